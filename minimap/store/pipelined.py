"""A worker's exchange on Postgres in two round trips instead of six (psycopg pipeline mode).

Round trip 1 sends, without waiting between them: the record of ended attempts, the claim lock, and the read of
running and ready instances. Python then picks what may start under the caps (`rules.claims.pick`), and round
trip 2 sends the claims; the caller's COMMIT ends the transaction. Profiled at N = 10,000 the six-round-trip
exchange took 3.9 ms, ~70 % of it waiting on the server between statements that need no answer in between.

Raw psycopg on the connection SQLAlchemy holds (same transaction); the statements are the ones `storage.py`
names, written once here as SQL with their locks and indexes:
- record: completions.RECORD_PG (the primary key; `state = 'running' AND try_number AND worker_id` guard it).
- lock: `pg_advisory_xact_lock` serialises claims (the caps' critical section), released at COMMIT.
- read: claims.SLOTS, compiled for the driver (running, ready and pools; its indexes are named there).
- claim: the primary key; `state IN (queued, up_for_retry)` makes a repeated claim change nothing. It is written
  `(...) IS TRUE` so that no index can take it as a condition: with 10 million finished instances in the table the
  planner expects one queued instance of a new run and walked ix_task_instance_state_run_priority over all the
  run's queued instances on every claim (2.7 ms at 10,000 queued, 0.65 ms through the primary key).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from minimap.store import completions, wakeups
from minimap.store.rows import Completion

CLAIM_LOCK = 720_302  # claims.CLAIM_LOCK_KEY (claims.py imports this module)

# completions.RECORD_PG with psycopg's placeholders: one statement records the batch and inserts its tries.
RECORD = re.sub(r"(?<!:):(\w+)", r"%(\1)s", completions.RECORD_PG.text)

CLAIM = """
UPDATE task_instance
SET state = 'running', try_number = try_number + 1, started_at = %(now)s, ended_at = NULL, next_retry_at = NULL,
    error = NULL, hostname = %(hostname)s, pid = %(pid)s, worker_id = %(worker_id)s
WHERE run_id = %(run_id)s AND task_id = %(task_id)s AND map_index = ANY(%(indexes)s)
  AND (state IN ('queued', 'up_for_retry')) IS TRUE
RETURNING map_index, try_number, max_tries, args
"""


@contextmanager
def driver_errors(conn: Connection, statement: str) -> Iterator[None]:
    """Raw driver errors as SQLAlchemy's (DBAPIError subclasses, as its own statements raise them), so the store
    turns them into one line and the loops wait out the transient ones; a connection the error closed is
    invalidated, so the pool does not hand it out again."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as e:
        raw = conn.connection.driver_connection
        if raw is None or getattr(raw, "closed", False):
            conn.invalidate(e)
        raise DBAPIError.instance(statement, None, e, dbapi.Error, dialect=conn.dialect) from e


def naive(t: datetime | None) -> datetime | None:
    """UTC without tzinfo, as the timestamp columns hold it."""
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t is not None else None


def record_lock_read(
    conn: Connection, worker_id: str, done: Sequence[Completion], want: int, slots_sql: str, params: dict[str, Any]
) -> tuple[int, list[Any]]:
    """Round trip 1: record `done`, then (if `want`) take the claim lock and read running and ready instances with
    claims.SLOTS (`slots_sql`, `params`, compiled by claims.slots_sql): (recorded, SLOTS' rows)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    read = rec = None
    with driver_errors(conn, RECORD if done else slots_sql), raw.pipeline():
        if done:
            rec = raw.execute(RECORD, completions.record_pg_params(worker_id, done))
        if want > 0:
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (CLAIM_LOCK,))
            read = raw.execute(slots_sql, params)
    with driver_errors(conn, RECORD):
        recorded = completions.kept(worker_id, done, {tuple(r) for r in rec.fetchall()}) if rec is not None else 0
        rows = read.fetchall() if read is not None else []
    return recorded, rows


def claim(
    conn: Connection,
    groups: list[tuple[str, str, list[int]]],
    now: datetime,
    worker_id: str,
    hostname: str,
    pid: int,
    commit: bool = False,
    notify: str | None = None,
) -> list[list[tuple[int, int, int, str | None]]]:
    """Round trip 2: claim the chosen map indexes of each (run, task); per group, (map_index, try, max_tries, args).

    `commit`: end the transaction in the same round trip (the claim lock is released as soon as the claims are
    made); the caller's COMMIT then finds no transaction and sends nothing. `notify`: a channel to notify (delivered
    at commit; nothing when notifications are off)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    base = {"now": naive(now), "hostname": hostname, "pid": pid, "worker_id": worker_id}
    with driver_errors(conn, CLAIM), raw.pipeline():
        cursors = [
            raw.execute(CLAIM, {**base, "run_id": rid, "task_id": tid, "indexes": indexes})
            for rid, tid, indexes in groups
        ]
        if notify and wakeups.enabled():
            raw.execute("SELECT pg_notify(%s, '')", (notify,))
        if commit:
            raw.execute("COMMIT")
    with driver_errors(conn, CLAIM):
        return [c.fetchall() for c in cursors]
