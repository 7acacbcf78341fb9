"""Failure tolerance through the real `minimap` command, on SQLite and Postgres: its edge (exactly at the limit
passes, one more fails), by count and by percentage, and clearing a tolerated failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from minimap.states import RunState, TIState
from minimap.store.storage import Store
from tests.conftest import DAGS, ledger, minimap_cli, run_tolerant

TOLERANT = str(DAGS / "tolerant.py")


def run(db_url: str, flags: Path, tolerance: str, failing: list[int]) -> tuple[int, str]:
    return run_tolerant(TOLERANT, db_url, flags, tolerance, failing)


@pytest.mark.parametrize("tolerance", ["2", "20%"])
def test_exactly_at_the_limit_the_task_counts_as_succeeded(
    db_url: str, store: Store, flags: Path, tolerance: str
) -> None:
    code, out = run(db_url, flags, tolerance, [3, 7])
    assert code == 0, out
    label = "tolerated_failures=2" if tolerance == "2" else "tolerated_failures=20%"
    assert f"success 8, failed 2 (2 failed, within {label}: the task succeeded)" in out
    run_id = store.latest_run().run_id
    assert store.run(run_id).state is RunState.SUCCESS
    (summary,) = store.instances(run_id, "summarize")
    assert summary.result == {"sent": [0, 1, 2, 4, 5, 6, 8, 9], "failed": {"send": [3, 7]}}  # index order


@pytest.mark.parametrize("tolerance", ["2", "20%"])
def test_one_failure_more_fails_the_task_at_once(db_url: str, store: Store, flags: Path, tolerance: str) -> None:
    code, out = run(db_url, flags, tolerance, [0, 1, 2])  # one at a time: the third failure comes at index 2
    assert code == 1, out
    label = "tolerated_failures=2" if tolerance == "2" else "tolerated_failures=20%"
    assert f"failed 3, skipped 7 (3 failed, past {label}: the task failed)" in out
    run_id = store.latest_run().run_id
    send = store.instances(run_id, "send")
    assert [i.state for i in send] == [TIState.FAILED] * 3 + [TIState.SKIPPED] * 7
    assert send[5].error == f"not started: send had 3 failed, past {label}: the task failed"
    assert all(i.try_number == 0 for i in send[3:])  # never started
    assert [i.state for i in store.instances(run_id, "summarize")] == [TIState.UPSTREAM_FAILED]
    assert ledger(flags) == ["send 0", "send 1", "send 2"]


def test_clearing_a_tolerated_failure_reruns_it_and_then_only_what_ran_without_it(
    db_url: str, store: Store, flags: Path
) -> None:
    code, out = run(db_url, flags, "2", [3, 7])
    assert code == 0, out
    run_id = store.latest_run().run_id
    assert ledger(flags)[-1] == "summary [0, 1, 2, 4, 5, 6, 8, 9] {'send': [3, 7]}"
    (flags / "fail-3").unlink()
    cleared = minimap_cli("clear", "--map-index", "3", db_url=db_url, env={"MINIMAP_TEST_TOLERANCE": "2"})
    assert cleared.returncode == 0, cleared.stderr  # no question asked: rerunning summarize is what a clear means
    assert "reset 2 instances" in cleared.stderr and "summarize (success)" in cleared.stderr
    after = ledger(flags)[11:]
    assert after == ["send 3", "summary [0, 1, 2, 3, 4, 5, 6, 8, 9] {'send': [7]}"]  # nothing else ran again
    assert store.run(run_id).state is RunState.SUCCESS
    assert [i.try_number for i in store.instances(run_id, "send")] == [1, 1, 1, 2, 1, 1, 1, 1, 1, 1]


def test_clearing_the_failures_past_the_tolerance_runs_the_rest(db_url: str, store: Store, flags: Path) -> None:
    code, _ = run(db_url, flags, "2", [0, 1, 2])
    assert code == 1
    for i in (0, 1, 2):
        (flags / f"fail-{i}").unlink()
    cleared = minimap_cli("clear", "--task", "send", "--state", "failed", db_url=db_url)
    assert cleared.returncode == 0, cleared.stderr
    run_id = store.latest_run().run_id
    assert store.run(run_id).state is RunState.SUCCESS
    assert [i.state for i in store.instances(run_id, "send")] == [TIState.SUCCESS] * 10
    assert ledger(flags)[-1] == f"summary {list(range(10))} {{'send': []}}"
