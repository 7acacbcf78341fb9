"""Claiming: ready instances become a worker's running attempts without breaking any concurrency cap (the hot path).

Every claim runs under one lock (Postgres: the transaction-scoped advisory lock CLAIM_LOCK; SQLite: its single
writer lock), so the running instances it counts are exact across processes and hosts; the caps themselves are the
pure rule `minimap.rules.claims.pick`.
"""

from __future__ import annotations

from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, and_, bindparam, literal, not_, select, text, union_all, update

from minimap.rules.claims import Slot, pick
from minimap.states import TIState
from minimap.store.rows import Claimed, utcnow
from minimap.store.specs import Specs
from minimap.store.tables import task_instance

ti = task_instance.c

CLAIM_LOCK_KEY = 720_302  # pg_advisory_xact_lock key that serializes claims (the caps' critical section)

# CLAIM_LOCK: the claims' critical section (Postgres), held until the claiming transaction ends.
CLAIM_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


def _slots_statement(one_run: bool) -> Any:
    """Running instances (kind 0), the first queued ones (1) and the first due retries (2), in one statement."""
    cols = (ti.run_id, ti.dag_id, ti.task_id, ti.map_index)
    only = (ti.run_id == bindparam("s_run_id"),) if one_run else ()
    order = (ti.run_id, ti.task_id, ti.map_index)
    branches = [
        select(*cols, literal(0).label("kind")).where(ti.state == TIState.RUNNING.value),
        select(*cols, literal(1).label("kind")).where(ti.state == TIState.QUEUED.value, *only)
        .order_by(*order).limit(bindparam("s_queued")),
        select(*cols, literal(2).label("kind"))
        .where(ti.state == TIState.UP_FOR_RETRY.value, ti.next_retry_at <= bindparam("s_now"), *only)
        .order_by(*order).limit(bindparam("s_retries")),
    ]  # fmt: skip
    return union_all(*[select(*b.subquery().c) for b in branches])  # LIMIT inside UNION needs subqueries on SQLite


# SLOTS[one_run]: running instances, then the first queued and due-retry ones, in one round trip; each branch is a
# range of ix_task_instance_state_run_id_task_id_map_index, already in claim order. Built once: constructing it per
# claim was 63% of a claim's Python time.
SLOTS = {one_run: _slots_statement(one_run) for one_run in (False, True)}

# CLAIM: the chosen indexes of one (run, task) that are still queued or up for retry become this worker's running
# attempt (primary key); the claim lock makes the choice and this update one step.
CLAIM = (
    update(task_instance)
    .where(
        ti.run_id == bindparam("k_run_id"),
        ti.task_id == bindparam("k_task_id"),
        ti.map_index.in_(bindparam("k_indexes", expanding=True)),
        ti.state.in_([TIState.QUEUED.value, TIState.UP_FOR_RETRY.value]),
    )
    .values(
        state=TIState.RUNNING.value,
        try_number=ti.try_number + 1,
        started_at=bindparam("v_now"),
        ended_at=None,
        next_retry_at=None,
        error=None,
        hostname=bindparam("v_hostname"),
        pid=bindparam("v_pid"),
        worker_id=bindparam("v_worker_id"),
    )
    .returning(ti.map_index, ti.try_number, ti.max_tries, ti.args)
)


def claim(
    conn: Connection,
    specs: Specs,
    is_postgres: bool,
    worker_id: str,
    hostname: str,
    pid: int,
    want: int,
    parallelism: int,
    run_id: str | None,
) -> list[Claimed]:
    """Up to `want` ready instances (of `run_id` if given) claimed for `worker_id`, no cap exceeded."""
    if is_postgres:
        conn.execute(CLAIM_LOCK, {"k": CLAIM_LOCK_KEY})
    # Read the clock only once the lock is held: a freed slot was committed before this point, so a
    # recorded start never precedes the recorded end of the attempt whose slot it takes.
    now = utcnow()
    running, ready = _slots(conn, want, run_id, now)
    if len(running) >= parallelism:
        return []
    chosen = pick(ready, running, {r.run_id: specs.get(conn, r.run_id)[0] for r in ready}, want, parallelism)
    if len(chosen) < want and len(ready) >= 2 * want:
        # more is queued than one batch and a cap passed some of it over: look past the capped pairs
        chosen = _choose(conn, specs, is_postgres, running, want, parallelism, run_id, now)
    claimed: list[Claimed] = []
    for (rid, tid), group in groupby(chosen, key=lambda s: (s.run_id, s.task_id)):
        spec, dag_file = specs.get(conn, rid)
        params = {"k_run_id": rid, "k_task_id": tid, "k_indexes": [s.map_index for s in group], "v_now": now,
                  "v_hostname": hostname, "v_pid": pid, "v_worker_id": worker_id}  # fmt: skip
        for r in conn.execute(CLAIM, params):
            claimed.append(
                Claimed(rid, spec.dag_id, dag_file, tid, r.map_index, r.try_number, r.max_tries, r.args, now)
            )
    return claimed


def _slots(conn: Connection, want: int, run_id: str | None, now: datetime) -> tuple[list[Slot], list[Slot]]:
    """In one round trip (SLOTS): every running instance, and the first ready ones (queued, then due retries)."""
    params = {"s_queued": 2 * want, "s_retries": want, "s_now": now, "s_run_id": run_id}
    running: list[Slot] = []
    ready: list[Slot] = []
    for r in conn.execute(SLOTS[run_id is not None], params):
        (running if r.kind == 0 else ready).append(Slot(r.run_id, r.dag_id, r.task_id, r.map_index))
    return running, ready


def _ready_past(condition: Any, want: int, run_id: str | None, blocked: set[tuple[str, str]], lock: bool) -> Any:
    """READY_PAST_CAPS: the first ready instances outside the (run, task) pairs at a cap, in claim order
    (ix_task_instance_state_run_id_task_id_map_index); Postgres locks them FOR UPDATE SKIP LOCKED."""
    q = (
        select(ti.run_id, ti.dag_id, ti.task_id, ti.map_index)
        .where(condition)
        .order_by(ti.run_id, ti.task_id, ti.map_index)
        .limit(want * 2)
    )
    if run_id is not None:
        q = q.where(ti.run_id == run_id)
    for rid, tid in blocked:
        q = q.where(not_(and_(ti.run_id == rid, ti.task_id == tid)))
    return q.with_for_update(skip_locked=True) if lock else q


def _choose(
    conn: Connection,
    specs: Specs,
    is_postgres: bool,
    running: list[Slot],
    want: int,
    parallelism: int,
    run_id: str | None,
    now: datetime,
) -> list[Slot]:
    """Ready instances to claim: queued ones, then due retries; passes (run, task) pairs at a cap."""
    chosen: list[Slot] = []
    blocked: set[tuple[str, str]] = set()
    ready = (
        ti.state == TIState.QUEUED.value,
        and_(ti.state == TIState.UP_FOR_RETRY.value, ti.next_retry_at <= now),
    )
    for condition in ready:
        for _ in range(4):  # a few rounds, each past the (run, task) pairs that hit a cap
            rows = [Slot(*r) for r in conn.execute(_ready_past(condition, want, run_id, blocked, is_postgres))]
            specs_now = {r.run_id: specs.get(conn, r.run_id)[0] for r in rows}
            picked = pick(rows, running + chosen, specs_now, want - len(chosen), parallelism)
            chosen.extend(picked)
            if len(chosen) >= want or len(rows) < want * 2:
                break
            got = {(p.run_id, p.task_id, p.map_index) for p in picked}
            blocked |= {(r.run_id, r.task_id) for r in rows if (r.run_id, r.task_id, r.map_index) not in got}
        if len(chosen) >= want:
            break
    return chosen
