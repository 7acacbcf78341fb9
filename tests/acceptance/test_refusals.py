"""A database that refuses what minimap asks (read-only, a schema it does not know, a table gone) and out-of-range
input: one line and exit 2, never an internal error, never a hang."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from minimap import api
from tests.conftest import DAGS, PG_ADMIN_URL, minimap_cli

SHIPPING = str(DAGS.parent.parent / "examples" / "shipping.py")


def sql(db_url: str, *statements: str, admin: bool = False) -> None:
    """Run statements on the test's database (or, with `admin`, on the server's maintenance database)."""
    engine = create_engine(PG_ADMIN_URL if admin else db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for s in statements:
            conn.execute(text(s))
    engine.dispose()


def one_error_line(result_stderr: str) -> str:
    lines = [line for line in result_stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "internal error" not in lines[0] and "Traceback" not in result_stderr, result_stderr
    return lines[0]


def test_a_read_only_database_is_one_line_and_exit_2(db_url: str) -> None:
    api.open_store(db_url).engine.dispose()  # the schema is there; only writing is refused
    if db_url.startswith("sqlite"):
        url = f"sqlite:///file:{make_url(db_url).database}?mode=ro&uri=true"
        expected = "refused: attempt to write a readonly database"
    else:
        name = make_url(db_url).database
        sql(db_url, f"ALTER DATABASE {name} SET default_transaction_read_only = on", admin=True)
        url = db_url
        expected = "refused: cannot execute INSERT in a read-only transaction"
    ran = minimap_cli("run", SHIPPING, db_url=url, timeout=60)
    assert ran.returncode == 2 and expected in one_error_line(ran.stderr)
    listed = minimap_cli("runs", db_url=url)  # reading still works
    assert listed.returncode == 0, listed.stderr


def test_a_schema_from_a_newer_minimap_is_one_line_and_exit_2(db_url: str) -> None:
    store = api.open_store(db_url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    store.engine.dispose()
    listed = minimap_cli("runs", db_url=db_url)
    assert listed.returncode == 2
    assert "has schema revision '0999', which this minimap does not know" in one_error_line(listed.stderr)


def test_a_missing_table_ends_run_and_reads_in_one_line_without_hanging(db_url: str, tmp_path: Path) -> None:
    store = api.open_store(db_url)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE task_try"))
    store.engine.dispose()
    # The first completion is refused while task processes are up: they must not keep minimap from exiting.
    ran = minimap_cli("run", SHIPPING, db_url=db_url, timeout=60, env={"MINIMAP_HOME": str(tmp_path)})
    assert ran.returncode == 2 and "task_try" in one_error_line(ran.stderr)
    listed = minimap_cli("tasks", db_url=db_url)
    assert listed.returncode == 2 and "task_try" in one_error_line(listed.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ["clear", "--map-index", "99999999999999999999", "--yes"],
        ["logs", "--task", "send_shipping_order", "--map-index", "99999999999999999999"],
        ["logs", "--task", "send_shipping_order", "--map-index", "1", "--try", "99999999999"],
    ],
)
def test_an_index_past_what_the_database_holds_is_a_usage_error(db_url: str, args: list[str]) -> None:
    result = minimap_cli(*args, db_url=db_url)
    assert result.returncode == 2 and "(see `minimap" in one_error_line(result.stderr)


def test_a_nul_character_in_a_tasks_output_is_stored_not_refused(db_url: str) -> None:
    ran = minimap_cli("run", str(DAGS / "nul_output.py"), db_url=db_url, timeout=60)
    assert ran.returncode == 1 and "error:" not in ran.stderr, ran.stderr  # the run failed (shout), minimap did not
    assert "shout try 1: ValueError: bad\ufffdbyte" in ran.stdout
    store = api.open_store(db_url)
    run_id = store.runs(1)[0].run_id
    assert store.instances(run_id, "give")[0].result == "x\x00y"  # JSON holds it as \u0000
    (attempt,) = store.tries(run_id, "shout")
    assert attempt.log is not None and "a\ufffdb" in attempt.log
