"""What users do: open a database, trigger a run, drive it to its end, resume it, plan a clear and apply it.

The CLI, the library (`minimap.api`) and the web page call these, so a clear planned on the page is the clear the
CLI would make. Each returns plain records; none prints.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from minimap.authoring.dag import DAG
from minimap.authoring.loader import load_dag
from minimap.defaults import PARALLELISM
from minimap.exceptions import ClearError
from minimap.execution.runner import Stop, drive
from minimap.rules import clearing
from minimap.rules.clearing import Instance
from minimap.rules.newrun import initial_instances
from minimap.service.pools import check_pools
from minimap.service.reads import resolve_run
from minimap.snapshot import DagSpec
from minimap.states import RunState, TIState
from minimap.store import engine as db
from minimap.store.rows import RunRow
from minimap.store.storage import Store

ClearTarget = str | tuple[str, int]  # a task id (every index), or one (task_id, map_index)


def open_store(url: str | None = None) -> Store:
    """A store on `url` (default: MINIMAP_DATABASE_URL, else SQLite in MINIMAP_HOME), schema upgraded."""
    return Store(db.connect(url))


# --- runs ---------------------------------------------------------------------------------------


def trigger(store: Store, dag: DAG, conf: dict[str, Any] | None = None, run_id: str | None = None) -> RunRow:
    """Create a run of `dag` (queued; a scheduler starts it) and return it."""
    snapshot = dag.snapshot()
    spec = DagSpec.from_json(snapshot)
    check_pools(store, spec)
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
    stop: Stop | None = None,
) -> RunState:
    """Drive an existing run until it is finished here (other schedulers and workers may help).

    With `stop` (installed as the signal handler), a signal ends the drive gracefully: Stopped is raised once
    the unfinished attempts are handed back (see `minimap.execution.runner.drive`).
    """
    spec = store.spec(run_id)
    return drive(store, run_id, workers or default_slots(spec), on_progress=on_progress, stop=stop)


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


def resume(
    store: Store,
    run_id: str,
    workers: int | None = None,
    on_progress: Callable[[], None] | None = None,
) -> RunState:
    """Drive an unfinished run to its end from the database alone; what succeeded is not run again."""
    return run_to_end(store, run_id, workers, on_progress)


def resumable(store: Store, run_id: str | None = None, dag_id: str | None = None) -> RunRow:
    """The run to resume (`run_id`, else the latest, of `dag_id` if given), refused (SnapshotError) when this
    minimap cannot read the DAG snapshot stored with it."""
    run = resolve_run(store, run_id, dag_id)
    store.spec(run.run_id)
    return run


def task_order(store: Store, run_id: str) -> list[str]:
    """The run's task ids in definition order."""
    return list(store.spec(run_id).tasks)


# --- clearing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClearPlan:
    """What a clear resets (a dry run), or did reset (once applied), and the CLI command that makes it."""

    run_id: str
    targets: tuple[ClearTarget, ...]
    only_states: tuple[TIState, ...]
    downstream_all: bool
    instances: tuple[Instance, ...]  # in task definition order, then map_index; the states before the reset
    command: str  # the `minimap clear ...` command line that makes this clear (without --db)
    expected_reruns: frozenset[tuple[str, int]] = frozenset()  # ran without a tolerated failure being cleared

    @property
    def succeeded(self) -> tuple[Instance, ...]:
        """Instances that succeeded and would run again (their side effects happen twice), except those that ran
        without a tolerated failure this clear runs again: running them again is what that clear means."""
        return tuple(
            i
            for i in self.instances
            if i.state is TIState.SUCCESS and (i.task_id, i.map_index) not in self.expected_reruns
        )


def select_targets(
    store: Store, run_id: str, task_id: str | None, map_indexes: Sequence[int], states: Sequence[TIState] = ()
) -> list[ClearTarget]:
    """What `--task`/`--map-index`/`--state` name: without a task or an index, states alone select among every
    task; without a task, indexes belong to the one mapped task having them all."""
    if task_id is None and not map_indexes and states:
        return list(task_order(store, run_id))
    return clear_targets(store, run_id, task_id, map_indexes)


def clear_lanes(
    store: Store, run_id: str, group_id: str, map_indexes: Sequence[int], only_states: Sequence[TIState] | None = None
) -> tuple[list[ClearTarget], list[TIState]]:
    """Targets and states for a clear that re-runs lanes of a mapped task group from their first step that did
    not succeed: lanes `map_indexes`, or with `only_states` (e.g. failed) every lane that has one."""
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


def plan_clear(
    store: Store,
    run_id: str,
    targets: Sequence[ClearTarget],
    only_states: Sequence[TIState] | None = None,
    downstream_all: bool = False,
) -> ClearPlan:
    """What clearing `targets` would reset; changes nothing. A target that is unknown or running raises."""
    return _clear(store, run_id, targets, only_states, downstream_all, apply=False)


def apply_clear(store: Store, plan: ClearPlan) -> ClearPlan:
    """Make the clear `plan` describes, planned again under the run's lock (states may have moved since):
    every reset instance is scheduled again with fresh tries, and the run is running again."""
    return _clear(store, plan.run_id, plan.targets, plan.only_states, plan.downstream_all, apply=True)


def _clear(
    store: Store,
    run_id: str,
    targets: Sequence[ClearTarget],
    only_states: Sequence[TIState] | None,
    downstream_all: bool,
    apply: bool,
) -> ClearPlan:
    spec = store.spec(run_id)
    wanted = [(t, None) if isinstance(t, str) else (t[0], t[1]) for t in targets]
    with store.scheduling(run_id) as tx:
        found = [Instance(*row) for row in tx.instance_states()]
        chosen = clearing.plan(spec, found, wanted, only_states, downstream_all)
        if chosen and apply:
            tx.reset(clearing.resets(spec, chosen))
    states = tuple(only_states or ())
    command = clear_command(spec, run_id, targets, states, downstream_all)
    reruns = frozenset(clearing.expected_reruns(spec, chosen))
    return ClearPlan(run_id, tuple(targets), states, downstream_all, tuple(chosen), command, reruns)


def clear_command(
    spec: DagSpec, run_id: str, targets: Sequence[ClearTarget], states: Sequence[TIState], downstream_all: bool
) -> str:
    """The `minimap clear` command line(s) selecting `targets` (one per task when they span several)."""
    flags = [f"--state {s.value}" for s in states] + (["--downstream-all"] if downstream_all else [])
    base = f"minimap clear --run-id {shlex.quote(run_id)}"
    tasks = list(dict.fromkeys(t if isinstance(t, str) else t[0] for t in targets))  # first mention first
    whole = {t for t in targets if isinstance(t, str)}
    indexes: dict[str, list[int]] = {}
    for t in targets:
        if not isinstance(t, str) and t[0] not in whole:
            indexes.setdefault(t[0], []).append(t[1])
    if states and not indexes and set(tasks) == set(spec.tasks):
        return " ".join([base, *flags])
    lines = []
    for task_id in tasks:
        pick = f" --map-index {index_list(indexes[task_id])}" if task_id in indexes else ""
        lines.append(" ".join([f"{base} --task {shlex.quote(task_id)}{pick}", *flags]))
    return " && ".join(lines)


def index_list(indexes: Sequence[int]) -> str:
    """`3,7,10-12`: the --map-index form of `indexes` (sorted, runs of three or more as ranges)."""
    s = sorted(set(indexes))
    parts: list[str] = []
    start = 0
    while start < len(s):
        end = start
        while end + 1 < len(s) and s[end + 1] == s[end] + 1:
            end += 1
        if end - start >= 2:
            parts.append(f"{s[start]}-{s[end]}")
        else:
            parts.extend(str(i) for i in s[start : end + 1])
        start = end + 1
    return ",".join(parts)
