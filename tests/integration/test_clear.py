"""Clearing inside mapped chains: only what did not succeed runs again."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from minimap import api
from minimap.execution import executor
from minimap.states import RunState, TIState
from minimap.store.storage import Store
from tests.conftest import DAGS, ledger

TWO_MAPPED = str(DAGS / "two_mapped.py")


def _run(store: Store, flags: Path) -> str:
    created = api.trigger_file(store, TWO_MAPPED, conf={"flags": str(flags)})
    api.run_to_end(store, created.run_id)
    return created.run_id


def _states(store: Store, run_id: str, task_id: str) -> list[tuple[int, TIState, int]]:
    return [(i.map_index, i.state, i.try_number) for i in store.instances(run_id, task_id)]


def test_clearing_a_mapped_upstream_resets_only_what_had_not_succeeded(store: Store, flags: Path) -> None:
    (flags / "fail-process-2").touch()
    (flags / "fail-notify-1").touch()
    run_id = _run(store, flags)
    assert store.run(run_id).state is RunState.FAILED
    assert [s for _, s, _ in _states(store, run_id, "notify")] == [
        TIState.SUCCESS,
        TIState.FAILED,
        TIState.SUCCESS,
        TIState.SUCCESS,
    ]
    assert _states(store, run_id, "per_item") == [(-1, TIState.UPSTREAM_FAILED, 0)]  # never expanded

    (flags / "fail-process-2").unlink()
    (flags / "fail-notify-1").unlink()
    reset = api.clear(store, run_id, [("process", 2)])
    assert [(i.task_id, i.map_index) for i in reset] == [
        ("process", 2),
        ("notify", 1),
        ("per_item", -1),
        ("report", -1),
    ]
    assert api.run_to_end(store, run_id) is RunState.SUCCESS

    runs = Counter(ledger(flags))
    assert runs["process 2"] == 2 and runs["notify 1"] == 2
    assert all(runs[f"process {x}"] == 1 for x in (0, 1, 3))
    assert all(runs[f"notify {x}"] == 1 for x in (0, 2, 3))  # succeeded downstream instances kept
    assert _states(store, run_id, "per_item") == [(i, TIState.SUCCESS, 1) for i in range(4)]  # expanded now
    assert store.instances(run_id, "report")[0].result == [0, 1, 2, 3]


def test_downstream_all_runs_succeeded_downstream_again(store: Store, flags: Path) -> None:
    (flags / "fail-process-2").touch()
    run_id = _run(store, flags)
    (flags / "fail-process-2").unlink()
    reset = api.clear(store, run_id, [("process", 2)], downstream_all=True)
    assert sum(1 for i in reset if i.task_id == "notify") == 4
    assert api.run_to_end(store, run_id) is RunState.SUCCESS
    assert all(Counter(ledger(flags))[f"notify {x}"] == 2 for x in range(4))


def test_clear_every_failed_instance_of_a_task(store: Store, flags: Path) -> None:
    for x in (1, 3):
        (flags / f"fail-process-{x}").touch()
    run_id = _run(store, flags)
    for x in (1, 3):
        (flags / f"fail-process-{x}").unlink()
    reset = api.clear(store, run_id, ["process"], only_states=[TIState.FAILED])
    assert [(i.task_id, i.map_index) for i in reset if i.task_id == "process"] == [("process", 1), ("process", 3)]
    assert api.run_to_end(store, run_id) is RunState.SUCCESS


def test_a_long_log_keeps_its_head_and_tail_and_says_it_was_cut(
    store: Store, flags: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executor, "LOG_LIMIT", 1000)
    (flags / "fail-process-0").touch()
    (flags / "big").write_text("x" * 50_000)
    run_id = _run(store, flags)
    tries = store.tries(run_id, "process", 0)
    log = tries[0].log or ""
    assert tries[0].log_truncated and "characters cut" in log
    assert len(log) < 1200
    assert log.rstrip().endswith("RuntimeError: process 0 fails")  # the traceback, at the end, is kept
