"""A lost worker is not the task's fault: killed workers and killed `minimap run`s, with real SIGKILLs.

The DAG has no retries and Airflow's default retry_delay (300 s): an instance that finishes here within the
test's timeout was re-queued at once, without spending a retry it does not have.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from minimap import api
from minimap.states import RunState, TIState
from minimap.store.storage import Store
from tests.acceptance.test_daemons import Processes, finished, wait_for
from tests.conftest import DAGS, ROOT, ledger, minimap_cli

KILLS = str(DAGS / "kills_worker.py")
pytestmark = pytest.mark.slow  # each kills and restarts minimap processes several times


@pytest.fixture
def procs(db_url: str, tmp_path: Path) -> Iterator[Processes]:
    p = Processes(db_url, tmp_path)
    yield p
    p.stop_all()


def ran(flags: Path) -> Counter[str]:
    """How many times each item's side effect happened."""
    return Counter(line.split()[1] for line in ledger(flags))


def run_killed_by_its_task(db_url: str, conf: dict[str, object]) -> None:
    """`minimap run` whose task SIGKILLs it (and so its task processes)."""
    proc = subprocess.run(
        [sys.executable, "-m", "minimap", "run", KILLS, "--conf", json.dumps(conf)],
        cwd=ROOT,
        env={**os.environ, "MINIMAP_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_a_killed_run_resumes_its_lost_attempt_at_once_without_a_retry(db_url: str, flags: Path) -> None:
    run_killed_by_its_task(db_url, {"n": 6, "kill": [2], "kills": 1, "flags": str(flags), "sleep": 1.0})
    store = api.open_store(db_url)
    run_id = store.runs(1)[0].run_id
    before = {i.map_index: i for i in store.instances(run_id, "work", [TIState.SUCCESS])}

    resumed = minimap_cli("resume", db_url=db_url, timeout=100)  # far less than the 300 s retry delay
    assert resumed.returncode == 0, resumed.stderr
    assert store.run(run_id).state is RunState.SUCCESS
    work = {i.map_index: i for i in store.instances(run_id, "work")}
    lost = [t for t in store.tries(run_id, "work") if t.error_type == "WorkerLost"]
    assert {t.map_index for t in lost} >= {2} and all("is gone" in (t.error_message or "") for t in lost)
    for t in lost:  # each lost attempt is its own try, and gave its try back
        assert work[t.map_index].try_number == 2 and work[t.map_index].max_tries == 2
    for index, row in before.items():  # what had been recorded did not run again
        assert (work[index].try_number, work[index].ended_at) == (row.try_number, row.ended_at)
    assert sorted(ran(flags).values()) == [1] * 6
    assert store.instances(run_id, "total")[0].result == sum(range(6))


def test_a_task_that_kills_its_worker_every_time_fails_after_three_lost_attempts(db_url: str, flags: Path) -> None:
    run_killed_by_its_task(db_url, {"n": 1, "kill": [0], "kills": 99, "flags": str(flags), "before": 0})
    for _ in range(2):  # the second and the third lost attempt take their `minimap resume` with them
        resumed = minimap_cli("resume", db_url=db_url)
        assert resumed.returncode == -signal.SIGKILL, resumed.stderr
    last = minimap_cli("resume", db_url=db_url)
    assert last.returncode == 1, last.stderr  # a failed run, not an endless loop
    assert "lost its worker 3 times in a row, so it is failed (MINIMAP_MAX_LOST_ATTEMPTS=3)" in last.stdout
    store = api.open_store(db_url)
    run_id = store.runs(1)[0].run_id
    (work,) = store.instances(run_id, "work")
    assert (work.state, work.try_number) == (TIState.FAILED, 3)
    assert [t.error_type for t in store.tries(run_id, "work")] == ["WorkerLost"] * 3
    assert ledger(flags) == []


def test_the_limit_of_lost_attempts_is_configurable(db_url: str, flags: Path) -> None:
    run_killed_by_its_task(db_url, {"n": 1, "kill": [0], "kills": 99, "flags": str(flags), "before": 0})
    last = minimap_cli("resume", db_url=db_url, env={"MINIMAP_MAX_LOST_ATTEMPTS": "1"})
    assert last.returncode == 1 and "lost its worker 1 times in a row" in last.stdout


def test_a_worker_killed_under_its_task_is_replaced_by_the_live_one_without_a_retry(
    store: Store, procs: Processes, flags: Path
) -> None:
    conf = {"n": 12, "kill": [4], "kills": 1, "flags": str(flags), "sleep": 0.3}
    run_id = api.trigger_file(store, KILLS, conf=conf).run_id
    procs.start("scheduler")
    procs.start("worker", "--concurrency", "2")
    procs.start("worker", "--concurrency", "2")
    wait_for(lambda: any(p.poll() is not None for p in procs.started), 60, "a worker to be killed", procs)
    wait_for(finished(store, run_id), 60, "the run to finish", procs)  # not the 300 s retry delay
    assert store.run(run_id).state is RunState.SUCCESS, procs.logs()[-3000:]
    lost = [t for t in store.tries(run_id, "work") if t.error_type == "WorkerLost"]
    assert 4 in {t.map_index for t in lost} and len({t.pid for t in lost}) == 1  # the killed worker's attempts
    assert all("is gone (its process no longer exists)" in (t.error_message or "") for t in lost)
    for t in lost:
        again = store.instances(run_id, "work", map_indexes=[t.map_index])[0]
        assert (again.state, again.try_number, again.max_tries) == (TIState.SUCCESS, 2, 2)
        assert again.pid != t.pid
    assert ran(flags)["4"] == 1
