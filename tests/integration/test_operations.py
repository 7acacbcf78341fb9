"""The service layer's clear: a plan that changes nothing, its CLI command, and applying it."""

from __future__ import annotations

import shlex
from pathlib import Path

from minimap import api
from minimap.service.operations import index_list
from minimap.states import RunState, TIState
from minimap.store import engine as db
from minimap.store.storage import Store
from tests.conftest import DAGS, minimap_cli

TWO_MAPPED = str(DAGS / "two_mapped.py")


def _failed_run(store: Store, flags: Path) -> str:
    (flags / "fail-process-1").touch()
    (flags / "fail-process-2").touch()
    created = api.trigger_file(store, TWO_MAPPED, conf={"flags": str(flags)})
    assert api.run_to_end(store, created.run_id) is RunState.FAILED
    return created.run_id


def test_a_planned_clear_changes_nothing_and_names_its_command(db_url: str, flags: Path) -> None:
    store = Store(db.connect(db_url))
    run_id = _failed_run(store, flags)
    before = store.instances(run_id)

    targets = api.select_targets(store, run_id, "process", [1, 2])
    plan = api.plan_clear(store, run_id, targets)

    assert targets == [("process", 1), ("process", 2)]
    assert [(i.task_id, i.map_index, i.state) for i in plan.instances] == [
        ("process", 1, TIState.FAILED),
        ("process", 2, TIState.FAILED),
        ("per_item", -1, TIState.UPSTREAM_FAILED),
        ("report", -1, TIState.UPSTREAM_FAILED),
    ]
    assert plan.succeeded == ()
    assert plan.command == f"minimap clear --run-id {shlex.quote(run_id)} --task process --map-index 1,2"
    assert store.instances(run_id) == before and store.run(run_id).state is RunState.FAILED

    # the command does what the plan says
    proc = minimap_cli(*shlex.split(plan.command)[1:], "--dry-run", db_url=db_url)
    assert proc.returncode == 0, proc.stderr
    assert "would reset 4 instances" in proc.stderr and "process[2] (failed)" in proc.stderr

    (flags / "fail-process-1").unlink()
    (flags / "fail-process-2").unlink()
    applied = api.apply_clear(store, plan)
    assert applied.instances == plan.instances
    assert store.run(run_id).state is RunState.RUNNING
    assert {i.map_index: i.state for i in store.instances(run_id, "process")} == {
        0: TIState.SUCCESS,
        1: TIState.SCHEDULED,
        2: TIState.SCHEDULED,
        3: TIState.SUCCESS,
    }
    assert api.run_to_end(store, run_id) is RunState.SUCCESS
    store.engine.dispose()


def test_states_alone_select_among_every_task(store: Store, flags: Path) -> None:
    run_id = _failed_run(store, flags)
    targets = api.select_targets(store, run_id, None, [], [TIState.FAILED])
    plan = api.plan_clear(store, run_id, targets, [TIState.FAILED])
    assert targets == ["fetch", "process", "notify", "per_item", "report"]
    assert [(i.task_id, i.map_index) for i in plan.instances] == [
        ("process", 1),
        ("process", 2),
        ("per_item", -1),
        ("report", -1),
    ]
    assert plan.command == f"minimap clear --run-id {shlex.quote(run_id)} --state failed"


def test_clear_commands_for_several_tasks_and_whole_tasks(store: Store, flags: Path) -> None:
    run_id = _failed_run(store, flags)
    plan = api.plan_clear(store, run_id, [("process", 1), ("process", 2), "notify"], downstream_all=True)
    base = f"minimap clear --run-id {shlex.quote(run_id)}"
    assert plan.command == (
        f"{base} --task process --map-index 1,2 --downstream-all && {base} --task notify --downstream-all"
    )
    assert len(plan.succeeded) == 4  # notify's four succeeded instances would run again


def test_index_list_is_the_map_index_flag_form() -> None:
    assert index_list([7, 3, 10, 11, 12]) == "3,7,10-12"
    assert index_list([0, 1]) == "0,1"
    assert index_list([5]) == "5"
    assert index_list([0, 1, 2, 3, 9]) == "0-3,9"
