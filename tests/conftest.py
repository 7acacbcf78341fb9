"""Fixtures: a fresh database per test on SQLite and on a real Postgres, and helpers to run DAG files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from minimap.store import engine as db
from minimap.store.storage import Store

ROOT = Path(__file__).resolve().parent.parent
DAGS = Path(__file__).resolve().parent / "dags"
PG_ADMIN_URL = os.environ.get("MINIMAP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("MINIMAP_REQUIRE_POSTGRES") == "1"
# One template per test process, so two test runs on one machine (or pytest-xdist workers) never collide.
TEMPLATE = f"minimap_test_template_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def _pg_admin():  # type: ignore[no-untyped-def]
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """A migrated template database to clone per test, or None (with the reason) if Postgres is away."""
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {TEMPLATE}"))
    except Exception as e:  # noqa: BLE001
        reason = f"Postgres at {db.mask(PG_ADMIN_URL)} is not reachable: {db.short(e)}"
        if REQUIRE_PG:
            pytest.fail(reason + " (MINIMAP_REQUIRE_POSTGRES=1)", pytrace=False)
        yield None
        return
    url = make_url(PG_ADMIN_URL).set(database=TEMPLATE).render_as_string(hide_password=False)
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "minimap.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file we copy
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A fresh, migrated database for this test: SQLite, then the same test on Postgres."""
    if request.param == "sqlite":
        shutil.copy(sqlite_template, tmp_path / "minimap.db")
        yield f"sqlite:///{tmp_path / 'minimap.db'}"
        return
    template = request.getfixturevalue("pg_template")
    if template is None:
        pytest.skip(f"Postgres at {db.mask(PG_ADMIN_URL)} is not reachable (set MINIMAP_TEST_DATABASE_URL)")
    name = f"minimap_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db.connect(db_url))
    yield s
    s.engine.dispose()


@pytest.fixture
def flags(tmp_path: Path) -> Path:
    """A folder test DAGs read: `fail-<item>` files make those items fail; `ledger` counts side effects."""
    folder = tmp_path / "flags"
    folder.mkdir()
    return folder


def ledger(flags: Path) -> list[str]:
    """Each line a side effect a test DAG performed (e.g. one shipping order sent)."""
    path = flags / "ledger"
    return path.read_text().splitlines() if path.exists() else []


def minimap_cli(
    *args: str, db_url: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real `minimap` command in a subprocess."""
    full_env = {**os.environ, "MINIMAP_DATABASE_URL": db_url, "MINIMAP_PROGRESS_INTERVAL": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "minimap", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,  # never a terminal: a question to the user must not hang or depend on the shell
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )


def run_tolerant(dag_file: str, db_url: str, flags: Path, tolerance: str, failing: list[int]) -> tuple[int, str]:
    """`minimap run` of a DAG whose items in `failing` fail (flag files) under MINIMAP_TEST_TOLERANCE: exit code,
    and what it printed (tests/dags/tolerant.py, tolerant_lanes.py)."""
    for i in failing:
        (flags / f"fail-{i}").touch()
    conf = json.dumps({"flags": str(flags)})
    proc = minimap_cli("run", dag_file, "--conf", conf, db_url=db_url, env={"MINIMAP_TEST_TOLERANCE": tolerance})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout + proc.stderr
