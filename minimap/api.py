"""minimap as a library: every operation the CLI and the web page perform, as plain functions returning records.

This module is the public face of the service layer (minimap/service/): the writes in `operations`, the reads in
`reads`, the records they return in `records`. Names listed in `__all__` are the supported surface.
"""

from __future__ import annotations

from collections.abc import Sequence

from minimap.exceptions import ClearError, DatabaseError, DefinitionError, MinimapError, NotFoundError, PoolError
from minimap.rules.clearing import Instance
from minimap.rules.newrun import initial_instances
from minimap.service.cursors import CursorError
from minimap.service.lanes import Lane, LaneMatrix, lane_matrix, lane_matrix_json, mapped_groups
from minimap.service.operations import (
    ClearPlan,
    ClearTarget,
    apply_clear,
    clear_command,
    clear_lanes,
    clear_targets,
    default_slots,
    open_store,
    plan_clear,
    resumable,
    resume,
    run,
    run_to_end,
    select_targets,
    task_order,
    trigger,
    trigger_file,
)
from minimap.service.pools import PoolRow, delete_pool, list_pools, set_pool
from minimap.service.reads import (
    MAX_LIMIT,
    get_run,
    instance_detail,
    instances,
    latest_run,
    latest_try,
    list_instances,
    list_runs,
    list_workers,
    log_view,
    recent_runs,
    resolve_run,
    run_detail,
    tries,
    tries_by_instance,
    try_log,
)
from minimap.service.records import (
    InstanceDetail,
    LogChunk,
    LogView,
    Page,
    RunDetail,
    RunSummary,
    TaskSummary,
    WorkerInfo,
    instance_json,
    run_json,
    task_json,
    try_json,
)
from minimap.service.schedules import (
    DagInfo,
    backfill_file,
    dag_json,
    list_dags,
    load_spec,
    set_paused,
)
from minimap.states import RunState, TIState
from minimap.store.rows import InstanceRow, RunRow, TryRow
from minimap.store.storage import Store

__all__ = [
    # operations (minimap/service/operations.py)
    "open_store",
    "trigger",
    "trigger_file",
    "run",
    "run_to_end",
    "resume",
    "resumable",
    "default_slots",
    "initial_instances",
    "task_order",
    "ClearTarget",
    "ClearPlan",
    "select_targets",
    "clear_targets",
    "clear_lanes",
    "plan_clear",
    "apply_clear",
    "clear_command",
    "clear",
    "list_pools",
    "set_pool",
    "delete_pool",
    "PoolRow",
    # reads (minimap/service/reads.py)
    "MAX_LIMIT",
    "get_run",
    "latest_run",
    "resolve_run",
    "list_runs",
    "recent_runs",
    "run_detail",
    "list_instances",
    "instances",
    "instance_detail",
    "tries",
    "tries_by_instance",
    "latest_try",
    "try_log",
    "log_view",
    "list_workers",
    "lanes",
    "mapped_groups",
    # time schedules (minimap/service/schedules.py)
    "list_dags",
    "set_paused",
    "load_spec",
    "backfill_file",
    "DagInfo",
    "dag_json",
    # records and their JSON shapes (minimap/service/records.py, minimap/store/rows.py)
    "Page",
    "RunSummary",
    "RunDetail",
    "TaskSummary",
    "InstanceDetail",
    "LogChunk",
    "LogView",
    "WorkerInfo",
    "Lane",
    "LaneMatrix",
    "lane_matrix_json",
    "RunRow",
    "InstanceRow",
    "TryRow",
    "Instance",
    "RunState",
    "TIState",
    "Store",
    "run_json",
    "task_json",
    "instance_json",
    "try_json",
    # errors: every one a user can cause is a MinimapError (one line, an exit code)
    "MinimapError",
    "DefinitionError",
    "DatabaseError",
    "NotFoundError",
    "ClearError",
    "CursorError",
    "PoolError",
]


def clear(
    store: Store,
    run_id: str,
    targets: Sequence[ClearTarget],
    only_states: Sequence[TIState] | None = None,
    downstream_all: bool = False,
    dry_run: bool = False,
) -> list[Instance]:
    """Reset instances to run again (Airflow's shape: task ids, or (task_id, map_index) pairs).

    Every downstream instance that has not succeeded is reset too, so the run can finish; downstream
    instances that succeeded are kept unless `downstream_all`. Returns what was (or, with `dry_run`,
    would be) reset. A target that is unknown or running raises, and then nothing changes.
    """
    plan = plan_clear(store, run_id, targets, only_states, downstream_all)
    if dry_run:
        return list(plan.instances)
    return list(apply_clear(store, plan).instances)


def lanes(store: Store, run_id: str, group_id: str) -> LaneMatrix:
    """A mapped task group's lanes in a run: map index x step, one state each (as `minimap tasks --group`)."""
    return lane_matrix(store, run_id, group_id)
