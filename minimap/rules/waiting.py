"""Why an instance is not running (pure): its upstream tasks, a cap, its retry delay, or its worker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from minimap.snapshot import DagSpec
from minimap.states import FINISHED, TIState

_FINISHED = {s.value for s in FINISHED}


@dataclass(frozen=True)
class WaitFacts:
    """What the database says around one instance, gathered by the read side."""

    spec: DagSpec
    task_id: str
    map_index: int
    state: TIState
    now: datetime
    run_state: str = "running"  # RunState value
    runs_ahead: int = 0  # unfinished earlier runs of the same DAG
    upstream: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # task_id -> state -> n
    running_in_run: int = 0
    running_task_in_run: int = 0
    running_task_in_dag: int = 0
    running_everywhere: int = 0
    parallelism: int | None = None
    live_workers: int = 0
    next_retry_at: datetime | None = None
    worker_id: str | None = None  # the lease holder, while running
    worker_heartbeat_at: datetime | None = None  # None: that worker is not registered
    lease_timeout: float = 30.0
    pool_in_use: int = 0  # slots running instances take in the task's pool
    pool_size: int | None = 128  # its slots; None: the pool does not exist


def waiting_reason(f: WaitFacts) -> str | None:
    """One line on why the instance waits; None when it does not (finished, or running on a live worker)."""
    if f.state.value in _FINISHED:
        return None
    if f.run_state == "queued":
        ahead = f"{f.runs_ahead} earlier run{'s' * (f.runs_ahead != 1)}" if f.runs_ahead else "earlier runs"
        return f"the run is queued behind {ahead} of {f.spec.dag_id} (max_active_runs={f.spec.max_active_runs})"
    if f.state is TIState.RUNNING:
        return _lease(f)
    if f.state is TIState.SCHEDULED:
        return _upstream(f)
    if f.state is TIState.UP_FOR_RETRY and f.next_retry_at is not None and f.next_retry_at > f.now:
        secs = (f.next_retry_at - f.now).total_seconds()
        return f"up for retry: the next try is due in {secs:.0f} s ({f.next_retry_at.isoformat()})"
    return _cap(f) or _no_worker(f)


def _lease(f: WaitFacts) -> str | None:
    if f.worker_id is None:
        return None
    if f.worker_heartbeat_at is None:
        return f"running under worker {f.worker_id}, which is not registered (its lease will be reclaimed)"
    silent = (f.now - f.worker_heartbeat_at).total_seconds()
    if silent > f.lease_timeout:
        return (
            f"running under worker {f.worker_id}, silent for {silent:.0f} s "
            f"(over the {f.lease_timeout:.0f} s lease): a scheduler will reclaim it"
        )
    return None


def _upstream(f: WaitFacts) -> str:
    task = f.spec.tasks[f.task_id]
    pending = []
    for up in task.upstream:
        counts = f.upstream.get(up, {})
        open_ = {s: n for s, n in counts.items() if s not in _FINISHED and n}
        if open_:
            done = sum(n for s, n in counts.items() if s in _FINISHED)
            states = ", ".join(f"{n} {s}" for s, n in sorted(open_.items()))
            pending.append(f"{up} ({done} of {done + sum(open_.values())} done; {states})")
    if pending:
        return "waiting for upstream " + "; ".join(pending)
    if task.mapped and f.map_index == -1:
        return "upstream finished: waiting for a scheduler to expand it"
    rule = f" (trigger rule {task.trigger_rule})" if task.trigger_rule != "all_success" else ""
    group = f.spec.groups.get(task.group) if task.group is not None else None
    if group is not None and f.map_index < 0:
        return f"waiting for task group {group.group_id} to be expanded into lanes"
    if group is not None and group.max_active_lanes is not None:
        rule += f"; a new lane starts only while fewer than max_active_lanes={group.max_active_lanes} are in flight"
    return f"upstream finished: waiting for a scheduler to decide{rule}"


def _cap(f: WaitFacts) -> str | None:
    task = f.spec.tasks[f.task_id]
    if f.running_in_run >= f.spec.max_active_tasks:
        return f"at the DAG's cap: max_active_tasks={f.spec.max_active_tasks}, {f.running_in_run} running in this run"
    cap = task.max_active_tis_per_dagrun
    if cap is not None and f.running_task_in_run >= cap:
        return f"at the task's cap: max_active_tis_per_dagrun={cap}, {f.running_task_in_run} running in this run"
    cap = task.max_active_tis_per_dag
    if cap is not None and f.running_task_in_dag >= cap:
        return f"at the task's cap: max_active_tis_per_dag={cap}, {f.running_task_in_dag} running in all runs"
    if f.pool_size is None:
        return f"pool {task.pool!r} does not exist: create it with `minimap pools set {task.pool} SLOTS`"
    if f.pool_in_use + task.pool_slots > f.pool_size:
        return (
            f"at the pool's cap: pool {task.pool!r} has {f.pool_size} slots, {f.pool_in_use} taken by running "
            f"instances, and this one takes {task.pool_slots}"
        )
    if f.parallelism is not None and f.running_everywhere >= f.parallelism:
        return f"at the cap on all instances: parallelism={f.parallelism}, {f.running_everywhere} running"
    return None


def _no_worker(f: WaitFacts) -> str:
    ready = "queued" if f.state is TIState.QUEUED else "due for retry"
    if f.live_workers == 0:
        return f"{ready}: no worker is running (start one with `minimap worker`, or `minimap resume`)"
    return f"{ready}: waiting for a free slot on one of {f.live_workers} live worker{'s' * (f.live_workers != 1)}"
