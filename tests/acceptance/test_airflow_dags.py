"""Airflow DAG files through the real `minimap` command: what works, and what is refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import text

from minimap import api
from minimap.snapshot import SNAPSHOT_VERSION
from minimap.states import TIState
from minimap.store.storage import Store
from tests.acceptance.test_cli import one_line_error
from tests.conftest import DAGS, ROOT, minimap_cli

SLOW = pytest.mark.slow
KEYWORDS = str(DAGS / "airflow_keywords.py")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("typo", "airflow_keywords.py:29: unknown argument 'retires' to @task (did you mean 'retries'?)"),
        ("pool", "task hello of DAG keywords uses pool 'db', which does not exist: create it with `minimap pools set"),
        pytest.param("pool_slots", "airflow_keywords.py:33: task hello: pool_slots must be a whole number", marks=SLOW),
        pytest.param("priority_weight", "airflow_keywords.py:33: task hello: priority_weight must be", marks=SLOW),
        pytest.param("callback", "airflow_keywords.py:29: on_failure_callback is not supported", marks=SLOW),
        pytest.param("depends_on_past", "airflow_keywords.py:29: depends_on_past is not supported", marks=SLOW),
        pytest.param("email", "airflow_keywords.py:29: email is not supported", marks=SLOW),
        ("dag_typo", "airflow_keywords.py:27: unknown argument 'max_active_task' to DAG (did you mean"),
        pytest.param("fail_stop", "airflow_keywords.py:27: fail_stop is not supported yet", marks=SLOW),
        pytest.param("dataset_schedule", "airflow_keywords.py:27: schedule=[<object", marks=SLOW),
        ("default_typo", "airflow_keywords.py:27: unknown argument 'retry_dealy' to default_args (did you mean"),
        ("long_id", "airflow_keywords.py:27: dag_id 'ddd"),
        pytest.param("bad_id", "airflow_keywords.py:27: dag_id 'my dag' has the character ' '", marks=SLOW),
        pytest.param("long_task_id", "airflow_keywords.py:39: task_id 'ttt", marks=SLOW),
        pytest.param(
            "task_bash", "airflow_keywords.py:41: @task.bash is not supported yet: use BashOperator", marks=SLOW
        ),
        ("operator_typo", "airflow_keywords.py:35: unknown argument 'retires' to BashOperator (did you mean"),
        pytest.param(
            "partial_typo",
            "airflow_keywords.py:37: unknown argument 'bash_comand' to BashOperator.partial()",
            marks=SLOW,
        ),
    ],
)
def test_a_refused_keyword_is_one_line_exit_2_and_nothing_written(db_url: str, case: str, expected: str) -> None:
    proc = minimap_cli("run", KEYWORDS, db_url=db_url, env={"MINIMAP_TEST_CASE": case})
    assert proc.returncode == 2, proc.stderr
    assert expected in one_line_error(proc)
    store = api.open_store(db_url)
    try:
        assert store.runs() == []
    finally:
        store.engine.dispose()


def test_run_of_a_scheduled_dag_says_it_is_a_manual_run_and_stores_the_schedule(db_url: str) -> None:
    proc = minimap_cli("run", KEYWORDS, db_url=db_url, env={"MINIMAP_TEST_CASE": "schedule"})
    assert proc.returncode == 0, proc.stderr
    assert not [ln for ln in proc.stderr.splitlines() if "WARNING" in ln]
    notes = [ln for ln in proc.stderr.splitlines() if "schedule='@daily'" in ln]
    assert len(notes) == 1 and "a manual run" in notes[0] and "minimap scheduler" in notes[0]
    store = api.open_store(db_url)
    try:
        spec = store.spec(store.latest_run().run_id)
        assert (spec.schedule, spec.catchup, spec.tags) == ("@daily", False, ("t",))
    finally:
        store.engine.dispose()


@pytest.mark.slow
def test_an_airflow_style_dag_runs_as_in_airflow(db_url: str) -> None:
    proc = minimap_cli("run", str(DAGS / "airflow_style.py"), db_url=db_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(minimap_cli("tasks", "--json", db_url=db_url).stdout)
    results = {(r["task_id"], r["map_index"]): r["result"] for r in rows}
    assert results[("split", -1)] == {"xs": [1, 2], "ys": [10]}
    assert results[("add", 0)] == 101 and results[("add", 1)] == 102  # custom operator mapped over result["xs"]
    assert results[("total", -1)] == 213  # a mapped operator's .output, and result["ys"]
    assert results[("echo", 0)].endswith(" one") and results[("echo", 1)] == "last"  # bash: last line, {{ ds }}
    assert results[("echo", 0)][:4].isdigit()
    assert results[("templated", -1)] == "world -1" and results[("python", -1)] == 42
    assert results[("greet_literal", -1)].startswith("world 20")  # @task arguments written in the file are templates
    assert [results[("greet_mapped", i)] for i in (0, 1)] == ["0 d", "manual d"]
    assert results[("greet_upstream", -1)] == "{{ not rendered }} None"  # upstream outputs are not
    assert results[("context_keys", -1)] == {
        "task_id": "context_keys",
        "map_index": -1,
        "try_number": 1,
        "who": "world",
        "ds_ok": True,
        "pulled": {"xs": [1, 2], "ys": [10]},
        "pulled_key": [1, 2],
        "mapped_pulled": [101, 102],
    }
    log = minimap_cli("logs", "--task", "add", "--map-index", "1", db_url=db_url).stdout
    assert "world: 2 + 100 in manual__" in log  # a template field of a custom operator, rendered


def test_what_fails_an_attempt_says_so(db_url: str) -> None:
    proc = minimap_cli("run", str(DAGS / "airflow_errors.py"), db_url=db_url)
    assert proc.returncode == 1, proc.stderr
    rows = {r["task_id"]: r for r in json.loads(minimap_cli("tasks", "--json", db_url=db_url).stdout)}
    expected = {
        "not_dict": "has multiple_outputs=True and returned a list; return a dict",
        "big": "returned 5 items under 'xs' to map over, more than max_map_length=3",
        "undefined": "'nope' is undefined",
        "fails": "non-zero exit code 3",
    }
    for task_id, message in expected.items():
        assert rows[task_id]["state"] == TIState.FAILED.value and message in rows[task_id]["error"], rows[task_id]
    assert rows["skips"]["state"] == TIState.SKIPPED.value
    assert rows["ident"]["state"] == TIState.UPSTREAM_FAILED.value
    assert "about to fail" in minimap_cli("logs", "--task", "fails", db_url=db_url).stdout


def test_a_run_stored_with_another_snapshot_version_is_refused(db_url: str) -> None:
    store = api.open_store(db_url)
    try:
        run = api.trigger_file(store, str(DAGS / "airflow_errors.py"))
        older = json.dumps({**json.loads(_snapshot(store, run.run_id)), "version": 1})
        with store.engine.begin() as conn:  # as an older minimap would have stored it
            conn.execute(text("UPDATE dag_run SET snapshot = :s WHERE run_id = :r"), {"s": older, "r": run.run_id})
    finally:
        store.engine.dispose()
    proc = minimap_cli("resume", "--run-id", run.run_id, db_url=db_url)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert (
        len(errors) == 1
        and f"stored by another minimap (snapshot format 1, this minimap reads format {SNAPSHOT_VERSION})" in errors[0]
    )


def _snapshot(store: Store, run_id: str) -> str:
    with store.engine.connect() as conn:
        return str(conn.execute(text("SELECT snapshot FROM dag_run WHERE run_id = :r"), {"r": run_id}).scalar_one())


def test_dag_test_runs_in_process_and_prints_each_instance() -> None:
    proc = subprocess.run(
        [sys.executable, str(DAGS / "dag_test_script.py")], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:4] == [
        "double[0]: success -> 2",
        "double[1]: success -> 4",
        "double[2]: success -> 6",
        "total: success -> 12",
    ]
    assert lines[4].endswith("of DAG dag_test: success") and lines[5] == "returned success"
