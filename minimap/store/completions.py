"""Recording how attempts ended: the instance takes the attempt's outcome and a task_try row keeps its history.

Only the attempt a worker still holds is recorded (the THIS_TRY_HELD guard): a report that comes late, twice, or
after the instance was reclaimed or handed back changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, select, text, update

from minimap.states import TIState
from minimap.store.rows import Completion
from minimap.store.tables import task_instance, task_try

ti = task_instance.c
log = logging.getLogger(__name__)


# THIS_TRY: this very attempt (bind parameters k_run_id, k_task_id, k_map_index, k_try_number), still running;
# THIS_TRY_HELD: and held by the worker k_worker_id. The guard that makes a late, repeated or reclaimed report
# change nothing.
THIS_TRY = and_(
    ti.run_id == bindparam("k_run_id"),
    ti.task_id == bindparam("k_task_id"),
    ti.map_index == bindparam("k_map_index"),
    ti.state == TIState.RUNNING.value,
    ti.try_number == bindparam("k_try_number"),
)
THIS_TRY_HELD = and_(THIS_TRY, ti.worker_id == bindparam("k_worker_id"))

# COMPLETE_ONE: one attempt's end onto its instance (primary key), only while this worker holds that very try;
# SQLite's writer lock orders it against claims and reclaims.
COMPLETE_ONE = (
    update(task_instance)
    .where(THIS_TRY_HELD)
    .values(
        state=bindparam("state"),
        result=bindparam("result"),
        label=bindparam("label"),
        error=bindparam("error"),
        ended_at=bindparam("ended_at"),
        next_retry_at=bindparam("next_retry_at"),
    )
)

# HELD: the attempts (run, task, index, try) `worker_id` holds: a few rows of ix_task_instance_running (a tuple IN
# over the batch's keys was planned as a scan: 311 us a batch, this reads only the running rows).
HELD = select(ti.run_id, ti.task_id, ti.map_index, ti.try_number).where(
    ti.state == TIState.RUNNING.value, ti.worker_id == bindparam("worker_id")
)

# RECORD_PG: a batch of attempts' ends in one round trip (Postgres): UPDATE the instances this worker still
# holds (primary key; row locks until commit) and INSERT a task_try row for each one updated, nothing else.
RECORD_PG = text(
    """
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:k_run_id AS text[]), CAST(:k_task_id AS text[]), CAST(:k_map_index AS int[]),
            CAST(:k_try_number AS int[]), CAST(:state AS text[]), CAST(:result AS text[]), CAST(:label AS text[]),
            CAST(:error AS text[]), CAST(:ended_at AS timestamp[]), CAST(:next_retry_at AS timestamp[]),
            CAST(:try_state AS text[]), CAST(:error_type AS text[]), CAST(:error_message AS text[]),
            CAST(:log AS text[]), CAST(:log_truncated AS boolean[])
        ) AS v(run_id, task_id, map_index, try_number, state, result, label, error, ended_at, next_retry_at,
               try_state, error_type, error_message, log, log_truncated)
    ), recorded AS (
        -- only attempts this worker still holds: a late or repeated report changes nothing
        UPDATE task_instance AS t
        SET state = v.state, result = v.result, label = v.label, error = v.error,
            ended_at = v.ended_at, next_retry_at = v.next_retry_at
        FROM v
        WHERE t.run_id = v.run_id AND t.task_id = v.task_id AND t.map_index = v.map_index
          AND t.state = 'running' AND t.try_number = v.try_number AND t.worker_id = :worker_id
        RETURNING t.run_id, t.task_id, t.map_index, v.try_number, v.try_state, t.started_at, v.ended_at,
                  t.hostname, t.pid, v.error_type, v.error_message, v.log, v.log_truncated
    )
    INSERT INTO task_try (run_id, task_id, map_index, try_number, state, started_at, ended_at, hostname, pid,
                          error_type, error_message, log, log_truncated)
    SELECT * FROM recorded
    RETURNING run_id, task_id, map_index
    """
)


def record(conn: Connection, is_postgres: bool, worker_id: str, done: Sequence[Completion]) -> int:
    """Record ended attempts this worker still holds; how many were recorded. The others are logged as ignored."""
    if is_postgres:  # one round trip: update the instances and insert their tries
        recorded = {tuple(r) for r in conn.execute(RECORD_PG, record_pg_params(worker_id, done))}
        return kept(worker_id, done, recorded)
    # SQLite: which attempts this worker still holds (one read; BEGIN IMMEDIATE holds the writer lock, so nothing
    # changes before the update), then one executemany records them: a statement per attempt cost 11 % of a run.
    keys = [(*c.claimed.key, c.claimed.try_number) for c in done]
    still = {tuple(r) for r in conn.execute(HELD, {"worker_id": worker_id})}
    held: list[Completion] = []
    for c, key in zip(done, keys, strict=True):
        if key in still:
            still.discard(key)  # a report twice in one batch is recorded once
            held.append(c)
    if held:
        conn.execute(COMPLETE_ONE, [_complete_params(worker_id, c) for c in held])
        conn.execute(insert(task_try), [try_row(worker_id, c) for c in held])
    return kept(worker_id, done, {c.claimed.key for c in held})


def record_pg_params(worker_id: str, done: Sequence[Completion]) -> dict[str, Any]:
    """RECORD_PG's parameters: one array per column."""
    rows = [{**_complete_params(worker_id, c), **_try_extra(c)} for c in done]
    arrays = {name: [r[name] for r in rows] for name in rows[0] if name != "k_worker_id"}
    return {**arrays, "worker_id": worker_id}


def kept(worker_id: str, done: Sequence[Completion], recorded: set[tuple[Any, ...]]) -> int:
    """How many of `done` were recorded (their keys in `recorded`); the others are logged as ignored."""
    late = [c for c in done if c.claimed.key not in recorded]
    if late:
        _ignored(worker_id, late)
    return len({c.claimed.key for c in done} & recorded)  # a report twice in one batch is recorded once


def _ignored(worker_id: str, late: Sequence[Completion]) -> None:
    """A report for an attempt this worker no longer holds (reclaimed as lost, handed back, or already recorded)."""
    for c in late:
        k = c.claimed
        log.warning(
            "run %s: %s[%s] try %s ended %s on worker %s, which no longer holds it: that report is ignored",
            k.run_id, k.task_id, k.map_index, k.try_number, c.state.value, worker_id,
        )  # fmt: skip


def _naive(t: datetime | None) -> datetime | None:
    """UTC without tzinfo, as the UTCDateTime columns store it (for statements that bypass the type)."""
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t is not None else None


def _text(value: str | None) -> str | None:
    """Text a task produced, storable on every backend: Postgres text cannot hold NUL, so it becomes U+FFFD."""
    return value.replace("\x00", "\ufffd") if value is not None and "\x00" in value else value


def _try_extra(c: Completion) -> dict[str, Any]:
    try_state = TIState.FAILED if c.state is TIState.UP_FOR_RETRY else c.state
    return {"try_state": try_state.value, "error_type": c.error_type, "error_message": _text(c.error_message),
            "log": _text(c.log), "log_truncated": c.log_truncated}  # fmt: skip


def _complete_params(worker_id: str, c: Completion) -> dict[str, Any]:
    k = c.claimed
    return {
        "k_run_id": k.run_id, "k_task_id": k.task_id, "k_map_index": k.map_index, "k_try_number": k.try_number,
        "k_worker_id": worker_id, "state": c.state.value, "result": c.result, "label": _text(c.label),
        "error": _text(c.error_line), "ended_at": _naive(c.ended_at), "next_retry_at": _naive(c.next_retry_at),
    }  # fmt: skip


def try_row(worker_id: str, c: Completion) -> dict[str, Any]:
    """The task_try row of an ended attempt (an attempt sent to retry is recorded as failed)."""
    host, pid, _ = worker_id.rsplit(":", 2)  # workers are named host:pid:nonce
    k = c.claimed
    return {
        "run_id": k.run_id,
        "task_id": k.task_id,
        "map_index": k.map_index,
        "try_number": k.try_number,
        "state": TIState.FAILED.value if c.state is TIState.UP_FOR_RETRY else c.state.value,
        "started_at": k.started_at,
        "ended_at": c.ended_at,
        "hostname": host,
        "pid": int(pid) if pid.isdigit() else None,
        "error_type": c.error_type,
        "error_message": _text(c.error_message),
        "log": _text(c.log),
        "log_truncated": c.log_truncated,
    }
