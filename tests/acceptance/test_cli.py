"""The `minimap` command as users run it: real subprocesses, both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minimap import api
from minimap.states import RunState, TIState
from tests.conftest import DAGS, ROOT, ledger, minimap_cli

SHIPPING = str(DAGS / "shipping_flags.py")


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The error a failed command printed: exactly one line, no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "tests/dags/nope.py"], "no such DAG file"),
        (["run", "tests/dags/bad_syntax.py"], "bad_syntax.py:3: SyntaxError"),
        (["run", "tests/dags/bad_import.py"], "bad_import.py:2: ModuleNotFoundError: No module named"),
        (["run", "tests/dags/no_dag.py"], "no DAG in"),
        (["run", "tests/dags/two_dags.py"], "defines several DAGs (one, two): choose one with --dag-id"),
        (["run", "tests/dags/two_dags.py", "--dag-id", "three"], "no DAG 'three'"),
        (["run", "tests/dags/bad_expand.py"], "bad_expand.py:9: expand() argument 'x' of task t is a str"),
        (["run", SHIPPING, "--conf", "{nope"], "Invalid value for '--conf': not valid JSON"),
        (["run"], "Missing argument 'DAG_FILE'"),
        (["clear", "--map-index", "x"], "'x' is not a valid integer"),
        (["tasks", "--run-id", "nope"], "no run 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(db_url: str, args: list[str], expected: str) -> None:
    proc = minimap_cli(*args, db_url=db_url)
    assert proc.returncode == 2, proc.stderr
    assert expected in one_line_error(proc)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://alice:s3cret-pw@127.0.0.1:1/nowhere",
        "mysql://alice:s3cret-pw@localhost/x",
        "::not a url::",
    ],
)
def test_a_bad_database_url_is_one_line_and_never_shows_the_password(url: str) -> None:
    proc = minimap_cli("run", SHIPPING, db_url=url)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "s3cret" not in proc.stdout + proc.stderr
    assert "database" in line or "URL" in line


def test_the_default_database_is_sqlite_in_minimap_home(tmp_path: Path) -> None:
    env = {**os.environ, "MINIMAP_HOME": str(tmp_path / "home")}
    env.pop("MINIMAP_DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "minimap", "run", "tests/dags/two_dags.py", "--dag-id", "one"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "home" / "minimap.db").exists()
    assert "run manual__" in proc.stdout and ": success" in proc.stdout


@pytest.mark.slow
def test_the_shipping_story_from_the_command_line(db_url: str, flags: Path) -> None:
    (flags / "fail-K").touch()
    conf = json.dumps({"flags": str(flags)})
    first = minimap_cli("run", SHIPPING, "--conf", conf, db_url=db_url)
    assert first.returncode == 1, first.stderr
    assert "send[10] (K) try 1: TaskFailed: warehouse rejected item K" in first.stdout
    assert "--task send --map-index 10" in first.stdout

    tasks = json.loads(minimap_cli("tasks", "--json", db_url=db_url).stdout)
    assert set(tasks[0]) == {"run_id", "task_id", "map_index", "label", "state", "try_number", "started_at",
                             "ended_at", "result", "error", "tries"}  # fmt: skip
    by_key = {(t["task_id"], t["map_index"]): t for t in tasks}
    assert by_key["summarize", -1]["state"] == "upstream_failed"
    assert by_key["send", 10]["tries"][0]["error_message"] == "warehouse rejected item K"

    dry = minimap_cli("clear", "--map-index", "10", "--dry-run", db_url=db_url)
    assert dry.returncode == 0 and "would reset 2 instances" in dry.stderr
    assert json.loads(minimap_cli("tasks", "--json", db_url=db_url).stdout) == tasks

    missing = minimap_cli("clear", "--task", "send", "--map-index", "12", db_url=db_url)
    assert missing.returncode == 2
    assert "task send has no map index 12: it has map indexes 0–11" in one_line_error(missing)

    (flags / "fail-K").unlink()
    second = minimap_cli("clear", "--map-index", "10", db_url=db_url)
    assert second.returncode == 0, second.stderr
    assert ": success" in second.stdout
    assert len([x for x in ledger(flags) if x.startswith("sent")]) == 12

    runs = json.loads(minimap_cli("runs", "--json", db_url=db_url).stdout)
    assert [set(r) for r in runs] == [
        {"run_id", "dag_id", "state", "created_at", "started_at", "ended_at"}
        | {"run_type", "logical_date", "data_interval_start", "data_interval_end"}
    ]
    assert runs[0]["state"] == "success" and runs[0]["run_type"] == "manual"
    assert runs[0]["logical_date"] == runs[0]["data_interval_end"] == runs[0]["created_at"]

    log = minimap_cli("logs", "--task", "send", "--map-index", "10", "--try", "1", db_url=db_url)
    assert "TaskFailed: warehouse rejected item K" in log.stdout


def test_resume_after_sigkill_reruns_nothing_that_succeeded(db_url: str, flags: Path) -> None:
    env = {**os.environ, "MINIMAP_DATABASE_URL": db_url}
    conf = json.dumps({"flags": str(flags)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "minimap", "run", str(DAGS / "slow_items.py"), "--conf", conf],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    store = api.open_store(db_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = store.runs(1)
        if runs and len(store.instances(runs[0].run_id, "work", [TIState.SUCCESS])) >= 4:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its task processes: a crashed machine
    proc.wait()
    run_id = store.runs(1)[0].run_id
    before = {i.map_index: i for i in store.instances(run_id, "work", [TIState.SUCCESS])}
    assert 4 <= len(before) < 12
    assert store.run(run_id).state is RunState.RUNNING

    resumed = minimap_cli("resume", db_url=db_url)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = {i.map_index: i for i in store.instances(run_id, "work")}
    for index, row in before.items():
        assert (after[index].try_number, after[index].ended_at) == (row.try_number, row.ended_at)
    done = [line for line in ledger(flags) if line.startswith("work")]
    for index in before:
        assert done.count(f"work {index}") == 1
    assert store.instances(run_id, "total")[0].result == sum(range(12))


@pytest.mark.slow
def test_the_articles_poc_runs_unchanged_but_for_its_imports(tmp_path: Path) -> None:
    """examples/airflow_poc.py: 12 mapped instances, 3 at a time, summarize blocked by any failure."""
    url = f"sqlite:///{tmp_path / 'poc.db'}"
    proc = minimap_cli("run", "examples/airflow_poc.py", db_url=url, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    store = api.open_store(url)
    run_id = store.latest_run().run_id
    mapped = store.instances(run_id, "process_single_item")
    assert [i.map_index for i in mapped] == list(range(12))
    failed = [i for i in mapped if i.state is TIState.FAILED]
    summarize = store.instances(run_id, "summarize")[0]
    if failed:
        assert proc.returncode == 1 and summarize.state is TIState.UPSTREAM_FAILED
        assert all("Random failure for item" in (i.error or "") for i in failed)
    else:
        assert proc.returncode == 0 and summarize.result == [f"done_{c}" for c in "ABCDEFGHIJKL"]
    from tests.integration.test_engine import max_concurrent

    assert max_concurrent([i for i in mapped if i.ended_at]) <= 3
