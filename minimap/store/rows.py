"""The values the storage layer hands out: runs, instances, tries, claims and completions (frozen, from rows)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from minimap.states import RunState, TIState


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def decode(value: str | None) -> Any:
    return None if value is None else json.loads(value)


@dataclass(frozen=True)
class RunRow:
    """One DAG run."""

    id: int
    run_id: str
    dag_id: str
    state: RunState
    dag_file: str
    conf: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    run_type: str = "manual"  # manual / scheduled / backfill
    logical_date: datetime | None = None  # NULL (None) for a manual run: see `logical`
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None

    @classmethod
    def from_row(cls, r: Any) -> RunRow:
        return cls(
            r.id,
            r.run_id,
            r.dag_id,
            RunState(r.state),
            r.dag_file,
            json.loads(r.conf),
            r.created_at,
            r.started_at,
            r.ended_at,
            getattr(r, "run_type", "manual"),
            getattr(r, "logical_date", None),
            getattr(r, "data_interval_start", None),
            getattr(r, "data_interval_end", None),
        )

    @property
    def logical(self) -> tuple[datetime, datetime, datetime]:
        """(logical_date, data_interval_start, data_interval_end); a manual run's are its trigger time, as
        Airflow's."""
        if self.logical_date is None:
            return (self.created_at, self.created_at, self.created_at)
        return (
            self.logical_date,
            self.data_interval_start or self.logical_date,
            self.data_interval_end or self.logical_date,
        )


@dataclass(frozen=True)
class InstanceRow:
    """One task instance as listings show it."""

    run_id: str
    task_id: str
    map_index: int
    state: TIState
    try_number: int
    max_tries: int
    label: str | None
    error: str | None
    result: Any
    started_at: datetime | None
    ended_at: datetime | None
    hostname: str | None
    pid: int | None

    @classmethod
    def from_row(cls, r: Any) -> InstanceRow:
        return cls(
            r.run_id,
            r.task_id,
            r.map_index,
            TIState(r.state),
            r.try_number,
            r.max_tries,
            r.label,
            r.error,
            decode(r.result),
            r.started_at,
            r.ended_at,
            r.hostname,
            r.pid,
        )


@dataclass(frozen=True)
class TryRow:
    """One attempt of one instance."""

    run_id: str
    task_id: str
    map_index: int
    try_number: int
    state: TIState
    started_at: datetime | None
    ended_at: datetime | None
    hostname: str | None
    pid: int | None
    error_type: str | None
    error_message: str | None
    log: str | None
    log_truncated: bool

    @classmethod
    def from_row(cls, r: Any) -> TryRow:
        return cls(
            r.run_id,
            r.task_id,
            r.map_index,
            r.try_number,
            TIState(r.state),
            r.started_at,
            r.ended_at,
            r.hostname,
            r.pid,
            r.error_type,
            r.error_message,
            r.log,
            bool(r.log_truncated),
        )


@dataclass(frozen=True)
class Claimed:
    """An instance a worker has claimed: what it needs to run one attempt."""

    run_id: str
    dag_id: str
    dag_file: str
    task_id: str
    map_index: int
    try_number: int
    max_tries: int
    args: str | None
    started_at: datetime

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.run_id, self.task_id, self.map_index)


@dataclass(frozen=True)
class Completion:
    """How one attempt ended, to be recorded."""

    claimed: Claimed
    state: TIState  # success, skipped, failed or up_for_retry
    ended_at: datetime
    result: str | None = None  # JSON
    label: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    log: str | None = None
    log_truncated: bool = False
    next_retry_at: datetime | None = None

    @property
    def error_line(self) -> str | None:
        if self.error_type is None:
            return None
        return f"{self.error_type}: {self.error_message}" if self.error_message else self.error_type
