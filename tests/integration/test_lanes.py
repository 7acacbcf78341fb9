"""Mapped task groups through the library (`minimap.api`), on both backends."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from minimap import api
from minimap.states import RunState
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
