"""The plain records the reads return, and their JSON shapes (shared by `minimap ... --json` and the web API)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from minimap.store.rows import InstanceRow, RunRow, TryRow

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a keyset-paged listing."""

    items: list[T]
    next_after: str | None  # opaque cursor for the next page; None on the last page


@dataclass(frozen=True)
class RunSummary:
    """A run with the number of its instances in each state (all tasks)."""

    run: RunRow
    counts: dict[str, int]  # TIState value -> n


@dataclass(frozen=True)
class TaskSummary:
    """One task of one run: never one row per instance, counts instead."""

    task_id: str
    mapped: bool
    total: int  # instances (a mapped task not yet expanded: 1, its -1 placeholder)
    counts: dict[str, int]  # TIState value -> n
    first_start: datetime | None
    last_end: datetime | None
    caps: dict[str, int | None]
    upstream: list[str]
    expanded: bool = True  # False while a mapped task still has its -1 placeholder (length unknown)


@dataclass(frozen=True)
class RunDetail:
    """A run and its tasks in definition order."""

    run: RunRow
    tasks: list[TaskSummary]


@dataclass(frozen=True)
class InstanceDetail:
    """One instance with everything the instance page shows."""

    instance: InstanceRow
    tries: list[TryRow]  # oldest first
    args: dict[str, Any] | None  # the expanded keyword arguments, decoded
    result: Any  # decoded JSON result (None if none)
    idempotency_key: str
    waiting_reason: str | None  # why it is not running, when it waits
    worker_id: str | None = None  # the worker holding its lease, while running
    next_retry_at: datetime | None = None
    queued_at: datetime | None = None


@dataclass(frozen=True)
class LogChunk:
    """A window of one try's stored log."""

    text: str
    start: int  # offset of text in the whole log
    total: int  # length of the whole stored log
    truncated: bool  # the stored log itself was cut (head and tail kept)


@dataclass(frozen=True)
class LogView:
    """What `minimap logs` shows of one try: a header, the stored log, and notes around it."""

    name: str  # task_id[map_index]
    attempt: TryRow  # its log is not loaded here: `text` holds it
    text: str
    truncated: bool  # the stored log was cut in the middle (MINIMAP_LOG_LIMIT)
    error_line: str | None  # the error, shown when the try left no log to carry its traceback


@dataclass(frozen=True)
class WorkerInfo:
    """A registered worker and the instances it holds now."""

    worker_id: str
    hostname: str
    pid: int
    state: str
    started_at: datetime
    heartbeat_at: datetime
    running: list[tuple[str, str, int]] = field(default_factory=list)  # (run_id, task_id, map_index)


def iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def duration(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from `start` to `end`, when both are known."""
    return (end - start).total_seconds() if start is not None and end is not None else None


def run_json(r: RunRow | RunSummary) -> dict[str, Any]:
    """A run as `minimap runs --json` prints it (with `counts` when given a summary)."""
    run = r.run if isinstance(r, RunSummary) else r
    out: dict[str, Any] = {
        "run_id": run.run_id,
        "dag_id": run.dag_id,
        "state": run.state.value,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "run_type": run.run_type,
    }
    # a manual run's logical date and data interval are its trigger time, as in Airflow
    out["logical_date"], out["data_interval_start"], out["data_interval_end"] = (iso(t) for t in run.logical)
    if isinstance(r, RunSummary):
        out["counts"] = dict(r.counts)
    return out


def try_json(t: TryRow) -> dict[str, Any]:
    """One try, without its log (the log has its own paged read)."""
    return {
        "try_number": t.try_number,
        "state": t.state.value,
        "started_at": iso(t.started_at),
        "ended_at": iso(t.ended_at),
        "duration": duration(t.started_at, t.ended_at),
        "worker": f"{t.hostname}:{t.pid}" if t.hostname else None,
        "error_type": t.error_type,
        "error_message": t.error_message,
    }


def instance_json(i: InstanceRow, tries: list[TryRow] | None = None) -> dict[str, Any]:
    """An instance as `minimap tasks --json` prints it; `tries` left out (None) in paged listings."""
    out: dict[str, Any] = {
        "run_id": i.run_id,
        "task_id": i.task_id,
        "map_index": i.map_index,
        "label": i.label,
        "state": i.state.value,
        "try_number": i.try_number,
        "started_at": iso(i.started_at),
        "ended_at": iso(i.ended_at),
        "result": i.result,
        "error": i.error,
    }
    if tries is not None:
        out["tries"] = [try_json(t) for t in tries]
    return out


def task_json(t: TaskSummary) -> dict[str, Any]:
    """One task of a run with its per-state counts."""
    return {
        "task_id": t.task_id,
        "mapped": t.mapped,
        "total": t.total,
        "counts": dict(t.counts),
        "first_start": iso(t.first_start),
        "last_end": iso(t.last_end),
        "caps": dict(t.caps),
        "upstream": list(t.upstream),
        "expanded": t.expanded,
    }
