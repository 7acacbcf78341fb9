"""What users list and inspect: runs, a run's tasks, a task's instances, one instance, a try's log, workers.

The CLI, the library and the web page call these and nothing else to read, so they never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from minimap import defaults
from minimap.authoring.context import idempotency_key
from minimap.exceptions import MinimapError, NotFoundError
from minimap.rules import clearing
from minimap.rules.clearing import Instance, describe_indexes
from minimap.rules.waiting import WaitFacts, waiting_reason
from minimap.service.cursors import CursorError, decode, encode, keyset, plain
from minimap.service.records import (
    InstanceDetail,
    LogChunk,
    LogView,
    Page,
    RunDetail,
    RunSummary,
    TaskSummary,
    WorkerInfo,
)
from minimap.snapshot import DagSpec
from minimap.states import RunState, TIState
from minimap.store import inspect as inspect_sql
from minimap.store import reads as reads_sql
from minimap.store.rows import InstanceRow, RunRow, TryRow
from minimap.store.storage import Store

MAX_LIMIT = 1000  # rows one page may carry; more is refused, not cut


def list_runs(
    store: Store,
    *,
    dag_id: str | None = None,
    state: RunState | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Page[RunSummary]:
    """Runs newest first, each with its per-state counts; keyset paged by run."""
    limit = _limit(limit)
    before = decode(after, "r")[0] if after else None
    if before is not None and not isinstance(before, int):
        raise CursorError()
    rows = reads_sql.runs_page(store, dag_id, state, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    counts = reads_sql.run_state_counts(store, [r.run_id for r in rows])
    items = [RunSummary(r, counts.get(r.run_id, {})) for r in rows]
    return Page(items, encode("r", rows[-1].id) if more else None)


def recent_runs(store: Store, dag_id: str | None = None, limit: int = 50) -> list[RunSummary]:
    """The newest `limit` runs (any number: read in pages of at most MAX_LIMIT), for `minimap runs`."""
    found: list[RunSummary] = []
    after = None
    while len(found) < limit:
        page = list_runs(store, dag_id=dag_id, after=after, limit=min(limit - len(found), MAX_LIMIT))
        found += page.items
        if page.next_after is None:
            break
        after = page.next_after
    return found


def latest_run(store: Store, dag_id: str | None = None) -> RunRow:
    """The newest run (of `dag_id` if given), or NotFoundError."""
    return store.latest_run(dag_id)


def get_run(store: Store, run_id: str) -> RunRow:
    """The run `run_id`, or NotFoundError."""
    return store.run(run_id)


def resolve_run(store: Store, run_id: str | None = None, dag_id: str | None = None) -> RunRow:
    """`run_id`, or the latest run (of `dag_id` if given)."""
    return store.run(run_id) if run_id else store.latest_run(dag_id)


def run_detail(store: Store, run_id: str) -> RunDetail:
    """A run with one summary per task, in definition order, from one grouped query."""
    run = store.run(run_id)
    spec = store.spec(run_id)
    stats = reads_sql.task_stats(store, run_id)
    return RunDetail(run, [_summary(spec, tid, stats.get(tid)) for tid in spec.tasks])


def task_summary(store: Store, run_id: str, task_id: str) -> TaskSummary:
    """One task of a run with its per-state counts, from one grouped query over that task alone."""
    spec = _task(store, run_id, task_id)
    return _summary(spec, task_id, reads_sql.task_stats(store, run_id, [task_id]).get(task_id))


def _summary(spec: DagSpec, tid: str, s: reads_sql.TaskStats | None) -> TaskSummary:
    t = spec.tasks[tid]
    counts = s.counts if s is not None else {}
    return TaskSummary(
        task_id=tid,
        mapped=t.mapped,
        total=sum(counts.values()),
        counts=counts,
        first_start=s.first_start if s else None,
        last_end=s.last_end if s else None,
        caps={
            "max_active_tis_per_dag": t.max_active_tis_per_dag,
            "max_active_tis_per_dagrun": t.max_active_tis_per_dagrun,
        },
        upstream=list(t.upstream),
        expanded=not (t.mapped and s is not None and s.placeholder),
    )


def list_instances(
    store: Store,
    run_id: str,
    task_id: str,
    *,
    states: Sequence[TIState] | None = None,
    q: str | None = None,
    sort: str = "index",
    after: str | None = None,
    limit: int = 100,
) -> Page[InstanceRow]:
    """One page of a task's instances: filtered by state and label substring, sorted, keyset paged.

    `sort` is index, duration or end; a leading "-" sorts descending. Instances without a duration or an
    end yet come last either way, in map_index order.
    """
    descending = sort.startswith("-")
    key = sort[1:] if descending else sort
    if key not in reads_sql.SORTS:
        raise MinimapError(f"unknown sort {sort!r}: use index, duration or end (a leading - for descending)")
    _task(store, run_id, task_id)
    limit = _limit(limit)
    start = keyset(after, sort) if after else None
    rows = reads_sql.instance_page(
        store,
        run_id,
        task_id,
        states=states,
        q=q or None,
        sort=key,
        descending=descending,
        after=start,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = None
    if more:
        last, value = rows[-1]
        nxt = encode("i", sort, plain(value) if key != "index" else None, last.map_index)
    return Page([r for r, _ in rows], nxt)


def instances(
    store: Store, run_id: str, task_id: str | None = None, states: Sequence[TIState] | None = None
) -> list[InstanceRow]:
    """Every instance of a run (or of one task) in task definition order, then map_index (for `minimap tasks`)."""
    spec = store.spec(run_id)
    if task_id is not None:
        _task(store, run_id, task_id)
    order = {t: i for i, t in enumerate(spec.tasks)}
    rows = reads_sql.all_instances(store, run_id, task_id, states)
    return sorted(rows, key=lambda r: (order.get(r.task_id, len(order)), r.map_index))


def tries(store: Store, run_id: str, task_id: str | None = None, map_index: int | None = None) -> list[TryRow]:
    """Recorded attempts, oldest first, without their logs (`try_log` pages those)."""
    return inspect_sql.all_tries(store, run_id, task_id, map_index)


def tries_by_instance(store: Store, run_id: str, task_id: str | None = None) -> dict[tuple[str, int], list[TryRow]]:
    """Recorded attempts (oldest first) of every instance of a run, or of one task, by (task_id, map_index)."""
    by: dict[tuple[str, int], list[TryRow]] = {}
    for t in tries(store, run_id, task_id):
        by.setdefault((t.task_id, t.map_index), []).append(t)
    return by


def instance_detail(store: Store, run_id: str, task_id: str, map_index: int) -> InstanceDetail:
    """One instance with its tries, arguments, result, idempotency key and why it waits."""
    run = store.run(run_id)
    spec = _task(store, run_id, task_id)
    found = inspect_sql.instance(store, run_id, task_id, map_index)
    if found is None:
        raise NotFoundError(_no_index(store, run_id, task_id, map_index))
    row = found.row
    attempts = inspect_sql.all_tries(store, run_id, task_id, map_index)
    return InstanceDetail(
        instance=row,
        tries=attempts,
        args=_display_args(found.args),
        result=row.result,
        idempotency_key=idempotency_key(run.dag_id, run_id, task_id, map_index),
        waiting_reason=_why_waiting(store, run, spec, found),
        worker_id=found.worker_id,
        next_retry_at=found.next_retry_at,
        queued_at=found.queued_at,
    )


def try_log(
    store: Store,
    run_id: str,
    task_id: str,
    map_index: int,
    try_number: int,
    *,
    before: int | None = None,
    size: int = 16384,
) -> LogChunk:
    """The last `size` characters of one try's log ending at `before` (None: the end): page backwards."""
    if size < 1:
        raise MinimapError(f"log size must be at least 1, not {size}")
    if before is not None and before < 0:
        raise MinimapError(f"log offset must not be negative, not {before}")
    window = inspect_sql.log_window(store, run_id, task_id, map_index, try_number, before, size)
    if window is None:
        raise NotFoundError(_no_try(store, run_id, task_id, map_index, try_number))
    end = window.total if before is None else min(before, window.total)
    return LogChunk(window.text, end - len(window.text), window.total, window.truncated)


def latest_try(store: Store, run_id: str, task_id: str, map_index: int, try_number: int | None = None) -> TryRow:
    """The try `try_number` of an instance (default: its latest recorded), without its log; NotFoundError says why."""
    _task(store, run_id, task_id)
    found = inspect_sql.all_tries(store, run_id, task_id, map_index)
    chosen = found[-1] if found and try_number is None else next((t for t in found if t.try_number == try_number), None)
    if chosen is None:
        raise NotFoundError(_no_try(store, run_id, task_id, map_index, try_number))
    return chosen


def log_view(store: Store, run_id: str, task_id: str, map_index: int, try_number: int | None = None) -> LogView:
    """What `minimap logs` shows: one try (default: the latest), its whole stored log, and what to add."""
    chosen = latest_try(store, run_id, task_id, map_index, try_number)
    window = inspect_sql.log_window(store, run_id, task_id, map_index, chosen.try_number, None, inspect_sql.WHOLE_LOG)
    text = window.text if window is not None else ""
    error = None
    if chosen.error_type and not text:
        error = f"{chosen.error_type}: {chosen.error_message}" if chosen.error_message else chosen.error_type
    return LogView(_name(task_id, map_index), chosen, text, window.truncated if window else False, error)


def preview_clear(
    store: Store,
    run_id: str,
    targets: Sequence[tuple[str, int | None]],
    only_states: Sequence[TIState] | None = None,
    downstream_all: bool = False,
) -> list[Instance]:
    """What a clear of `targets` would reset now -- the plan `minimap clear --dry-run` prints -- read without a
    lock, and only the rows the plan can touch: the named indexes (in `only_states`) and the tasks downstream."""
    spec = store.spec(run_id)
    named = {t for t, _ in targets if t in spec.tasks}
    downstream = spec.downstream_closure(named)
    picks: list[tuple[str, list[int] | None, list[TIState] | None]] = [(t, None, None) for t in sorted(downstream)]
    for t in sorted(named - downstream):
        wanted = [i for task_id, i in targets if task_id == t]
        indexes = None if None in wanted else sorted({i for i in wanted if i is not None})
        picks.append((t, indexes, list(only_states) if only_states else None))
    found = [Instance(*row) for row in reads_sql.instance_states(store, run_id, picks)]
    try:
        return clearing.plan(spec, found, targets, only_states, downstream_all)
    except NotFoundError:  # an index that is not there: say which indexes are, from the whole task
        every = [Instance(*row) for row in reads_sql.instance_states(store, run_id, [(t, None, None) for t in named])]
        return clearing.plan(spec, every, targets, only_states, downstream_all)


def list_workers(store: Store) -> list[WorkerInfo]:
    """Every registered worker, newest heartbeat first, with the instances it holds now."""
    return [
        WorkerInfo(r.worker_id, r.hostname, r.pid, r.state, r.started_at, r.heartbeat_at, held)
        for r, held in inspect_sql.workers(store)
    ]


# --- helpers ------------------------------------------------------------------------------------


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise MinimapError(f"a page holds 1 to {MAX_LIMIT} rows, not {limit}: follow next_after for more")
    return limit


def _task(store: Store, run_id: str, task_id: str) -> DagSpec:
    spec = store.spec(run_id)
    if task_id not in spec.tasks:
        raise NotFoundError(f"run {run_id} has no task {task_id!r}; its tasks are {', '.join(spec.tasks)}")
    return spec


def _name(task_id: str, map_index: int) -> str:
    return f"{task_id}[{map_index}]" if map_index >= 0 else task_id


def _no_index(store: Store, run_id: str, task_id: str, map_index: int) -> str:
    first = inspect_sql.map_indexes(store, run_id, task_id, 10_001)
    if len(first) > 10_000:  # too many to name one by one: say the range the listing starts with
        return f"task {task_id} has no map index {map_index}"
    return f"task {task_id} has no map index {map_index}: it has {describe_indexes(first)}"


def _no_try(store: Store, run_id: str, task_id: str, map_index: int, try_number: int | None) -> str:
    _task(store, run_id, task_id)
    found = inspect_sql.instance(store, run_id, task_id, map_index)
    if found is None:
        return _no_index(store, run_id, task_id, map_index)
    name = _name(task_id, map_index)
    recorded = inspect_sql.all_tries(store, run_id, task_id, map_index)
    if not recorded:
        return f"{name} has no finished try yet (it is {found.row.state})"
    return f"{name} has no try {try_number}; its tries are {', '.join(str(t.try_number) for t in recorded)}"


def _display_args(stored: str | None) -> dict[str, Any] | None:
    """The stored keyword arguments as data (before any `.map()` function, which needs the DAG's code)."""
    if not stored:
        return None
    doc = json.loads(stored)
    kwargs = dict(doc.get("kw") or {})
    merge = doc.get("merge", {}).get("v")
    if isinstance(merge, dict):
        kwargs.update(merge)
    return kwargs


def _why_waiting(store: Store, run: RunRow, spec: DagSpec, found: inspect_sql.InstanceExtra) -> str | None:
    row = found.row
    facts = WaitFacts(spec=spec, task_id=row.task_id, map_index=row.map_index, state=row.state, now=_now())
    if row.state in (TIState.SUCCESS, TIState.FAILED, TIState.UPSTREAM_FAILED, TIState.SKIPPED, TIState.REMOVED):
        return None
    extra: dict[str, Any] = {"run_state": run.state.value, "lease_timeout": defaults.LEASE_TIMEOUT}
    if run.state is RunState.QUEUED:
        extra["runs_ahead"] = inspect_sql.runs_ahead(store, run)
    elif row.state is TIState.SCHEDULED:
        upstream = spec.tasks[row.task_id].upstream
        stats = reads_sql.task_stats(store, run.run_id, upstream)
        extra["upstream"] = {u: stats[u].counts for u in upstream if u in stats}
        for u in upstream:  # a step of a mapped group waits for its own lane's upstream only
            if spec.in_lane(u, row.task_id):
                mine = store.instances(run.run_id, u, map_indexes=[row.map_index])
                extra["upstream"][u] = {i.state.value: 1 for i in mine}
    elif row.state is TIState.RUNNING:
        w = inspect_sql.worker_row(store, found.worker_id) if found.worker_id else None
        extra.update(worker_id=found.worker_id, worker_heartbeat_at=w.heartbeat_at if w is not None else None)
    else:
        since = _now() - timedelta(seconds=defaults.LEASE_TIMEOUT)
        pool = spec.tasks[row.task_id].pool
        n = inspect_sql.running_now(store, run.run_id, found.dag_id, row.task_id, since, pool)
        extra.update(
            next_retry_at=found.next_retry_at,
            running_in_run=n.in_run,
            running_task_in_run=n.task_in_run,
            running_task_in_dag=n.task_in_dag,
            running_everywhere=n.everywhere,
            live_workers=n.live_workers,
            pool_in_use=n.in_pool,
            pool_size=n.pool_size,
        )
    return waiting_reason(replace(facts, **extra))


def _now() -> datetime:
    return datetime.now(timezone.utc)
