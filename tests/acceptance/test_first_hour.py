"""A new user's first hour through the real `minimap` command: the example, help, options, bad settings."""

from __future__ import annotations

import json
import shlex
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.test_cli import one_line_error
from tests.conftest import DAGS, ROOT, ledger, minimap_cli

SHIPPING_EXAMPLE = str(ROOT / "examples" / "shipping.py")


def test_the_shipping_example_tells_the_story(db_url: str, tmp_path: Path) -> None:
    """Run; some orders time out; clear exactly those; the run finishes and no order reached the warehouse twice."""
    env = {"MINIMAP_HOME": str(tmp_path / "home")}
    first = minimap_cli("run", SHIPPING_EXAMPLE, db_url=db_url, env=env)
    assert first.returncode in (0, 1), first.stderr
    if first.returncode == 1:
        assert "warehouse timed out on item" in first.stdout
        cleared = minimap_cli("clear", "--task", "send_shipping_order", "--state", "failed", db_url=db_url, env=env)
        assert cleared.returncode == 0, cleared.stderr + cleared.stdout
    rows = json.loads(minimap_cli("tasks", "--json", db_url=db_url, env=env).stdout)
    assert {r["state"] for r in rows} == {"success"}
    report = next(r["result"] for r in rows if r["task_id"] == "summarize")
    assert report == {"items": 12, "orders": 12, "sent_twice": []}


def test_minimap_alone_prints_its_help_and_exits_0(db_url: str) -> None:
    proc = minimap_cli(db_url=db_url)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: minimap" in proc.stdout and "Commands:" in proc.stdout
    assert "error" not in proc.stderr


def test_global_options_may_come_before_the_subcommand(db_url: str, tmp_path: Path) -> None:
    elsewhere = f"sqlite:///{tmp_path / 'other.db'}"  # MINIMAP_DATABASE_URL points there; --db must win
    created = minimap_cli("--db", db_url, "trigger", str(ROOT / "examples" / "cross_product.py"), db_url=elsewhere)
    assert created.returncode == 0, created.stderr
    before = json.loads(minimap_cli("--db", db_url, "runs", "--json", db_url=elsewhere).stdout)
    after = json.loads(minimap_cli("runs", "--json", "--db", db_url, db_url=elsewhere).stdout)
    assert len(before) == len(after) == 1
    assert json.loads(minimap_cli("runs", "--json", db_url=elsewhere).stdout) == []


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MINIMAP_POLL_INTERVAL", "fast", "MINIMAP_POLL_INTERVAL='fast' is not a number"),
        ("MINIMAP_PARALLELISM", "0", "MINIMAP_PARALLELISM='0' must be at least 1"),
        ("MINIMAP_LEASE_TIMEOUT", "nan", "MINIMAP_LEASE_TIMEOUT='nan' must be at least"),
    ],
)
def test_a_bad_environment_variable_is_one_line(db_url: str, name: str, value: str, expected: str) -> None:
    proc = minimap_cli("runs", db_url=db_url, env={name: value})
    assert proc.returncode == 2
    assert expected in one_line_error(proc)


def test_an_unusable_sqlite_path_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = minimap_cli("runs", db_url=f"sqlite:///{blocker}/minimap.db")
    assert proc.returncode == 2
    assert f"{blocker} is a file, not a folder" in one_line_error(proc)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word (a hung server, a black-holing proxy)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_database_that_never_answers_is_one_line_not_a_hang(silent_server: int) -> None:
    url = f"postgresql+psycopg://alice:s3cret-pw@127.0.0.1:{silent_server}/minimap"
    # A hang would hit the subprocess timeout and fail the test; the setting is 2 s.
    proc = minimap_cli("runs", db_url=url, env={"MINIMAP_CONNECT_TIMEOUT": "2"}, timeout=60)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "timeout" in line and "s3cret-pw" not in line and "alice:***@" in line


def test_many_failures_print_a_few_and_one_command_that_retries_them_all(db_url: str, flags: Path) -> None:
    for item in "ABCDEFGH":
        (flags / f"fail-{item}").touch()
    conf = json.dumps({"flags": str(flags)})
    first = minimap_cli("run", str(DAGS / "shipping_flags.py"), "--conf", conf, db_url=db_url)
    assert first.returncode == 1, first.stderr
    lines = first.stdout.splitlines()
    assert "failed instances (8):" in lines
    assert len([ln for ln in lines if "TaskFailed: warehouse rejected item" in ln]) == 5
    assert "  ... and 3 more (minimap tasks --run-id" in first.stdout
    retry = next(ln for ln in lines if ln.startswith("retry all 8: "))
    command = shlex.split(retry.removeprefix("retry all 8: "))
    assert command[:2] == ["minimap", "clear"] and command[-4:] == ["--task", "send", "--state", "failed"]

    for item in "ABCDEFGH":
        (flags / f"fail-{item}").unlink()
    second = minimap_cli(*command[1:], db_url=db_url)
    assert second.returncode == 0, second.stderr
    sent = [x.split()[1] for x in ledger(flags) if x.startswith("sent")]
    assert sorted(sent) == list("ABCDEFGHIJKL")  # the 4 that had succeeded were not sent again
