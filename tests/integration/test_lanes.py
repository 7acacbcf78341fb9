"""Mapped task groups through the library (`minimap.api`), on both backends."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from minimap import api
from minimap.execution.scheduler import Scheduler
from minimap.states import RunState, TIState
from minimap.store.rows import Claimed, Completion, utcnow
from minimap.store.storage import Store
from tests.conftest import DAGS, ledger


def test_the_library_shows_lanes_and_reruns_one(store: Store, flags: Path) -> None:
    (flags / "fail-validate-1").touch()
    run = api.trigger_file(store, str(DAGS / "lanes.py"), conf={"flags": str(flags), "n": 4})
    assert api.run_to_end(store, run.run_id) is RunState.FAILED
    matrix = api.lanes(store, run.run_id, "fulfil")
    assert [lane.state for lane in matrix.lanes] == ["success", "failed", "success", "success"]
    assert [lane.label for lane in matrix.lanes] == ["order-0", "order-1", "order-2", "order-3"]
    assert matrix.counts == {"success": 3, "failed": 1}

    (flags / "fail-validate-1").unlink()
    before = Counter(ledger(flags))
    targets, states = api.clear_lanes(store, run.run_id, "fulfil", [1])
    reset = api.clear(store, run.run_id, targets, states)
    assert [(i.task_id, i.map_index) for i in reset] == [
        ("fulfil.validate", 1), ("fulfil.ship", 1), ("fulfil.confirm", 1), ("report", -1),
    ]  # fmt: skip
    assert api.resume(store, run.run_id) is RunState.SUCCESS
    again = Counter(ledger(flags)) - before
    assert sorted(k.split(" ")[0] + " " + k.split(" ")[1][:2] for k in again) == [
        "confirm 1", "report ['", "ship 1", "validate 1",
    ]  # fmt: skip
    assert store.instances(run.run_id, "report")[0].result == ["dhl-0", "dhl-1", "dhl-2", "dhl-3"]


def test_a_group_past_its_tolerance_has_its_unstarted_lanes_refused_by_the_claim_then_skipped(
    store: Store, flags: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No cap on lanes: every lane's first step is queued at once. Once a failed lane is past
    tolerated_failures=0, no worker claims a step of the group until a scheduling pass has skipped the lanes not
    started; the lane under way then runs on to its end."""
    monkeypatch.setenv("LANES_CAP", "0")
    monkeypatch.setenv("MINIMAP_TEST_TOLERANCE", "0")
    run_id = api.trigger_file(store, str(DAGS / "tolerant_lanes.py"), conf={"flags": str(flags)}).run_id
    scheduler = Scheduler(store)
    worker = "host:4242:w"
    store.register_worker(worker, "host", 4242)

    def claim(want: int) -> list[Claimed]:
        return store.claim(worker, "host", 4242, want=want, parallelism=1000, run_id=run_id)

    scheduler.tick(run_id)
    (items,) = claim(1)
    store.complete(worker, [Completion(items, TIState.SUCCESS, utcnow(), result=json.dumps(list(range(10))))])
    scheduler.tick(run_id)
    assert store.counts(run_id)["deliver.check"] == {TIState.QUEUED: 10}
    (first,) = claim(1)  # the DAG runs one instance at a time (max_active_tasks=1)
    store.complete(worker, [Completion(first, TIState.SUCCESS, utcnow(), result="0")])
    scheduler.tick(run_id)  # lane 0 is under way: its send is queued
    (second,) = claim(1)
    assert (second.task_id, second.map_index) == ("deliver.check", 1)  # the higher priority_weight first
    store.complete(worker, [Completion(second, TIState.FAILED, utcnow(), error_message="no")])  # lane 1 failed
    assert claim(10) == []  # past the tolerance: no step of the group is claimed before a pass skips lanes 2-9
    scheduler.tick(run_id)
    check = {i.map_index: i.state for i in store.instances(run_id, "deliver.check")}
    assert check == {0: TIState.SUCCESS, 1: TIState.FAILED, **{i: TIState.SKIPPED for i in range(2, 10)}}
    assert [i.state for i in store.instances(run_id, "report")] == [TIState.UPSTREAM_FAILED]
    assert [(c.task_id, c.map_index) for c in claim(10)] == [("deliver.send", 0)]  # the lane under way runs on
