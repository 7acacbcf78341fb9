"""A mapped task group's tolerated_failures (failed lanes) through the real `minimap` command, on SQLite and
Postgres: its edge (exactly at the limit passes and the consumer gets the other lanes' results in index order;
one more fails the group at once and the lanes not started never start), by count and by percentage, clearing a
tolerated lane. The refusal on a plain group: test_groups.py, with the other misuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minimap.states import RunState, TIState
from minimap.store.storage import Store
from tests.conftest import DAGS, ledger, minimap_cli, run_tolerant

LANES = str(DAGS / "tolerant_lanes.py")


def run(db_url: str, flags: Path, tolerance: str, failing: list[int]) -> tuple[int, str]:
    return run_tolerant(LANES, db_url, flags, tolerance, failing)


@pytest.mark.parametrize("tolerance", ["2", "20%"])
def test_exactly_at_the_limit_the_consumer_gets_the_other_lanes_in_order(
    db_url: str, store: Store, flags: Path, tolerance: str
) -> None:
    code, out = run(db_url, flags, tolerance, [3, 7])
    assert code == 0, out
    label = "tolerated_failures=2" if tolerance == "2" else "tolerated_failures=20%"
    assert f"group deliver: 2 lanes failed, within {label}: the group succeeded" in out
    run_id = store.latest_run().run_id
    assert store.run(run_id).state is RunState.SUCCESS
    (report,) = store.instances(run_id, "report")
    assert report.state is TIState.SUCCESS
    assert report.result == {"sent": [0, 1, 2, 4, 5, 6, 8, 9], "failed": {"deliver.send": [3, 7]}}
    assert [i.state for i in store.instances(run_id, "deliver.send")].count(TIState.FAILED) == 2
    shown = minimap_cli("tasks", "--group", "deliver", "--json", db_url=db_url)
    matrix = json.loads(shown.stdout)  # the lane matrix names the tolerance and keeps the failed lanes in view
    assert matrix["tolerated_failures"] == (2 if tolerance == "2" else "20%")
    assert matrix["counts"] == {"success": 8, "failed": 2}
    shown = minimap_cli("tasks", "--group", "deliver", db_url=db_url)
    assert f"10 lanes, max_active_lanes=1, {label}: 2 failed, 8 success" in shown.stderr, shown.stderr


@pytest.mark.parametrize("tolerance", ["2", "20%"])
def test_one_lane_more_fails_the_group_at_once(db_url: str, store: Store, flags: Path, tolerance: str) -> None:
    code, out = run(db_url, flags, tolerance, [0, 1, 2])  # one lane at a time: the third failed lane is lane 2
    assert code == 1, out
    label = "tolerated_failures=2" if tolerance == "2" else "tolerated_failures=20%"
    assert f"group deliver: 3 lanes failed, past {label}: the group failed" in out
    run_id = store.latest_run().run_id
    for step in ("deliver.check", "deliver.send"):
        got = store.instances(run_id, step)
        assert [i.state for i in got[3:]] == [TIState.SKIPPED] * 7, step  # lanes 3-9 never started
        assert all(i.try_number == 0 for i in got[3:])
        assert got[5].error == f"not started: group deliver had 3 lanes failed, past {label}: the group failed"
    assert [i.state for i in store.instances(run_id, "deliver.send")][:3] == [TIState.FAILED] * 3
    assert [i.state for i in store.instances(run_id, "report")] == [TIState.UPSTREAM_FAILED]
    assert ledger(flags) == ["check 0", "send 0", "check 1", "send 1", "check 2", "send 2"]


@pytest.mark.parametrize("how", [["--group", "deliver"], ["--task", "deliver.send"]])
def test_clearing_a_tolerated_lane_reruns_it_and_then_only_the_consumer(
    db_url: str, store: Store, flags: Path, how: list[str]
) -> None:
    code, out = run(db_url, flags, "2", [3, 7])
    assert code == 0, out
    run_id = store.latest_run().run_id
    assert ledger(flags)[-1] == "report [0, 1, 2, 4, 5, 6, 8, 9] {'deliver.send': [3, 7]}"
    done = len(ledger(flags))
    (flags / "fail-3").unlink()
    cleared = minimap_cli("clear", *how, "--map-index", "3", db_url=db_url, env={"MINIMAP_TEST_TOLERANCE": "2"})
    assert cleared.returncode == 0, cleared.stderr  # no question: rerunning the consumer is what the clear means
    assert "report (success)" in cleared.stderr
    assert ledger(flags)[done:] == ["send 3", "report [0, 1, 2, 3, 4, 5, 6, 8, 9] {'deliver.send': [7]}"]
    assert store.run(run_id).state is RunState.SUCCESS
    assert [i.try_number for i in store.instances(run_id, "deliver.send")] == [1, 1, 1, 2, 1, 1, 1, 1, 1, 1]
    assert [i.try_number for i in store.instances(run_id, "deliver.check")] == [1] * 10


def test_clearing_the_failed_lanes_past_the_tolerance_runs_the_lanes_left_unstarted(
    db_url: str, store: Store, flags: Path
) -> None:
    code, _ = run(db_url, flags, "2", [0, 1, 2])
    assert code == 1
    for i in (0, 1, 2):
        (flags / f"fail-{i}").unlink()
    cleared = minimap_cli("clear", "--group", "deliver", "--state", "failed", db_url=db_url)
    assert cleared.returncode == 0, cleared.stderr
    run_id = store.latest_run().run_id
    assert store.run(run_id).state is RunState.SUCCESS
    assert [i.state for i in store.instances(run_id, "deliver.send")] == [TIState.SUCCESS] * 10
    assert ledger(flags)[-1] == f"report {list(range(10))} {{'deliver.send': []}}"
