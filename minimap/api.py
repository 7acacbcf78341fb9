"""Everything the CLI does, as plain functions: open a database, trigger, run, list."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from minimap.authoring.dag import DAG
from minimap.authoring.loader import load_dag
from minimap.defaults import PARALLELISM
from minimap.exceptions import ClearError, DefinitionError, NotFoundError
from minimap.execution.runner import drive
from minimap.rules import clearing
from minimap.rules.clearing import Instance
from minimap.rules.expansion import ExpansionError, encode_args, expand
from minimap.service.lanes import LaneMatrix, lane_matrix
from minimap.snapshot import DagSpec
from minimap.states import RunState, TIState
from minimap.store import engine as db
from minimap.store.rows import InstanceRow, RunRow
from minimap.store.storage import Store


def open_store(url: str | None = None) -> Store:
    """A store on `url` (default: MINIMAP_DATABASE_URL, else SQLite in MINIMAP_HOME), schema upgraded."""
    return Store(db.connect(url))


def initial_instances(spec: DagSpec) -> list[dict[str, Any]]:
    """A new run's instances: one placeholder (map_index -1) per task, except that a task mapped over
    literals alone is expanded at once (its length is known before anything runs)."""
    rows: list[dict[str, Any]] = []
    for tid, t in spec.tasks.items():
        base = {"task_id": tid, "state": TIState.SCHEDULED.value, "max_tries": t.retries + 1, "args": None}
        if t.mapped and not t.refs():
            try:
                args = [encode_args(kw) for kw in expand(t, {})]
            except ExpansionError as e:
                raise DefinitionError(f"task {tid}: {e}") from None
            if args:
                rows.extend({**base, "map_index": i, "args": a} for i, a in enumerate(args))  # same keys every row
                continue
        rows.append({**base, "map_index": -1})
    return rows


def trigger(store: Store, dag: DAG, conf: dict[str, Any] | None = None, run_id: str | None = None) -> RunRow:
    """Create a run of `dag` (queued; a scheduler starts it) and return it."""
    snapshot = dag.snapshot()
    spec = DagSpec.from_json(snapshot)
    now = datetime.now(timezone.utc)
    run_id = run_id or f"manual__{now.isoformat(timespec='microseconds')}"
    return store.create_run(
        run_id,
        dag.dag_id,
        os.path.abspath(dag.fileloc),
        json.dumps(snapshot),
        dict(conf or {}),
        initial_instances(spec),
    )


def trigger_file(store: Store, path: str, dag_id: str | None = None, conf: dict[str, Any] | None = None) -> RunRow:
    """Load the DAG file and create a run of its DAG."""
    dag = load_dag(path, dag_id)
    dag.fileloc = os.path.abspath(path)
    return trigger(store, dag, conf)


def default_slots(spec: DagSpec, parallelism: int | None = None) -> int:
    """Enough task processes to reach the DAG's cap, up to `parallelism`."""
    return max(1, min(parallelism or PARALLELISM, spec.max_active_tasks))


def run_to_end(
    store: Store,
    run_id: str,
    workers: int | None = None,
    on_progress: Callable[[], None] | None = None,
) -> RunState:
    """Drive an existing run until it is finished here (other schedulers and workers may help)."""
    spec = store.spec(run_id)
    return drive(store, run_id, workers or default_slots(spec), on_progress=on_progress)


def run(
    path: str,
    dag_id: str | None = None,
    conf: dict[str, Any] | None = None,
    workers: int | None = None,
    url: str | None = None,
    store: Store | None = None,
) -> RunRow:
    """Create a run of the DAG in `path` and drive it to the end; returns the finished run."""
    store = store or open_store(url)
    created = trigger_file(store, path, dag_id, conf)
    run_to_end(store, created.run_id, workers)
    return store.run(created.run_id)


def resolve_run(store: Store, run_id: str | None = None, dag_id: str | None = None) -> RunRow:
    """`run_id`, or the latest run (of `dag_id` if given)."""
    return store.run(run_id) if run_id else store.latest_run(dag_id)


def task_order(store: Store, run_id: str) -> list[str]:
    """The run's task ids in definition order."""
    return list(store.spec(run_id).tasks)


def instances(
    store: Store,
    run_id: str,
    task_id: str | None = None,
    states: list[TIState] | None = None,
) -> list[InstanceRow]:
    """The run's instances in task definition order, then map_index."""
    spec = store.spec(run_id)
    if task_id is not None and task_id not in spec.tasks:
        raise NotFoundError(f"run {run_id} has no task {task_id!r}; its tasks are {', '.join(spec.tasks)}")
    order = {t: i for i, t in enumerate(spec.tasks)}
    rows = store.instances(run_id, task_id, states)
    return sorted(rows, key=lambda r: (order.get(r.task_id, len(order)), r.map_index))


def lanes(store: Store, run_id: str, group_id: str) -> LaneMatrix:
    """A mapped task group's lanes in a run: map index x step, one state each (as `minimap tasks --group`)."""
    return lane_matrix(store, run_id, group_id)


def resume(
    store: Store,
    run_id: str,
    workers: int | None = None,
    on_progress: Callable[[], None] | None = None,
) -> RunState:
    """Drive an unfinished run to its end from the database alone; what succeeded is not run again."""
    return run_to_end(store, run_id, workers, on_progress)


ClearTarget = str | tuple[str, int]


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
    spec = store.spec(run_id)
    wanted = [(t, None) if isinstance(t, str) else (t[0], t[1]) for t in targets]
    with store.scheduling(run_id) as tx:
        found = [Instance(*row) for row in tx.instance_states()]
        reset = clearing.plan(spec, found, wanted, only_states, downstream_all)
        if reset and not dry_run:
            tx.reset([(i.task_id, i.map_index) for i in reset], {t: s.retries for t, s in spec.tasks.items()})
    return reset


def clear_lanes(
    store: Store, run_id: str, group_id: str, map_indexes: Sequence[int], only_states: Sequence[TIState] | None = None
) -> tuple[list[ClearTarget], list[TIState]]:
    """Targets and states for `clear` that re-run lanes of a mapped task group from their first step that
    did not succeed: lanes `map_indexes`, or with `only_states` (e.g. failed) every lane that has one."""
    targets, states = clearing.group_targets(store.spec(run_id), group_id, map_indexes, only_states)
    return [t if i is None else (t, i) for t, i in targets], states


def clear_targets(store: Store, run_id: str, task_id: str | None, map_indexes: Sequence[int]) -> list[ClearTarget]:
    """--task/--map-index as clear targets; without --task, the one mapped task having those indexes."""
    if task_id is None:
        if not map_indexes:
            raise ClearError("say what to clear: --task T, --map-index N, or both")
        spec = store.spec(run_id)
        rows = store.instances(run_id, map_indexes=list(map_indexes))
        task_id = clearing.resolve_task(spec, [Instance(r.task_id, r.map_index, r.state) for r in rows], map_indexes)
    if not map_indexes:
        return [task_id]
    return [(task_id, i) for i in map_indexes]
