"""Claiming: ready instances become a worker's running attempts without breaking any concurrency cap (the hot path).

Every claim runs under one lock (Postgres: the transaction-scoped advisory lock CLAIM_LOCK; SQLite: its single
writer lock), so the running instances it counts are exact across processes and hosts; the caps themselves are the
pure rule `minimap.rules.claims.pick`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, and_, bindparam, literal, not_, select, text, union_all, update

from minimap.rules.claims import Slot, pick
from minimap.states import TIState
from minimap.store import pipelined, wakeups
from minimap.store.rows import Claimed, utcnow
from minimap.store.specs import Specs
from minimap.store.tables import pool, task_instance
from minimap.store.tolerance import past_tolerance

ti = task_instance.c

CLAIM_LOCK_KEY = 720_302  # pg_advisory_xact_lock key that serializes claims (the caps' critical section)

# CLAIM_LOCK: the claims' critical section (Postgres), held until the claiming transaction ends.
CLAIM_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


# CLAIM_ORDER: highest effective priority_weight first, then run, task and map index -- the order of
# ix_task_instance_state_priority (and, within one run, of ix_task_instance_state_run_priority), so a claim reads
# the first rows of an index range and sorts nothing.
CLAIM_ORDER = (ti.priority_weight.desc(), ti.run_id, ti.task_id, ti.map_index)
_SLOT = (ti.run_id, ti.dag_id, ti.task_id, ti.map_index, ti.pool, ti.pool_slots)


def _slots_statement(one_run: bool) -> Any:
    """Running instances (kind 0), the first queued ones (1), the first due retries (2) and the pools (3: the name
    in `pool`, the slots in `map_index`), in one statement."""
    cols = _SLOT
    only = (ti.run_id == bindparam("s_run_id"),) if one_run else ()
    order = CLAIM_ORDER
    branches = [
        select(*cols, literal(0).label("kind")).where(ti.state == TIState.RUNNING.value),
        select(*cols, literal(1).label("kind")).where(ti.state == TIState.QUEUED.value, *only)
        .order_by(*order).limit(bindparam("s_queued")),
        select(*cols, literal(2).label("kind"))
        .where(ti.state == TIState.UP_FOR_RETRY.value, ti.next_retry_at <= bindparam("s_now"), *only)
        .order_by(*order).limit(bindparam("s_retries")),
        # the pools, in the instances' columns (of the same types): the name stands in for run, DAG and task
        select(pool.c.name, pool.c.name, pool.c.name, pool.c.slots, pool.c.name, pool.c.slots, literal(3)),
    ]  # fmt: skip
    return union_all(*[select(*b.subquery().c) for b in branches])  # LIMIT inside UNION needs subqueries on SQLite


# SLOTS[one_run]: running instances, then the first queued and due-retry ones, and every pool's size, in one round
# trip; each instance branch is a range of ix_task_instance_state_priority (one run: _state_run_priority, or for the
# queued ones ix_task_instance_queued_claim, which the planner picks however few queued instances it expects), already
# in claim order. Built once: constructing it per claim was 63% of a claim's Python time.
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
    slots: tuple[list[Slot], list[Slot], dict[str, int]] | None = None,
    commit: bool = False,
    notify_if_short: str | None = None,
) -> list[Claimed]:
    """Up to `want` ready instances (of `run_id` if given) claimed for `worker_id`, no cap exceeded.

    `slots`: running, ready and pools, already read under the claim lock (the pipelined exchange, Postgres).
    `commit`: the claim is the transaction's last statement; on Postgres commit it in the claims' round trip.
    `notify_if_short`: a channel to notify (at commit) when the queue ran dry: fewer than `want` instances were
    ready, and all of them were chosen."""
    if is_postgres and slots is None:
        conn.execute(CLAIM_LOCK, {"k": CLAIM_LOCK_KEY})
    # Read the clock only once the lock is held: a freed slot was committed before this point, so a
    # recorded start never precedes the recorded end of the attempt whose slot it takes.
    now = utcnow()
    running, ready, pools = slots if slots is not None else _slots(conn, want, run_id, now)
    if len(running) >= parallelism:
        return []
    specs_now = {r.run_id: specs.get(conn, r.run_id)[0] for r in ready}
    stopped = past_tolerance(conn, {(r.run_id, r.task_id) for r in ready}, specs_now)  # failed past tolerance
    chosen = pick([r for r in ready if (r.run_id, r.task_id) not in stopped], running, specs_now, want, parallelism,
                  pools)  # fmt: skip
    if len(chosen) < want and len(ready) >= 2 * want:
        # more is queued than one batch and a cap passed some of it over: look past the capped pairs
        chosen = _choose(conn, specs, is_postgres, running, want, parallelism, run_id, now, pools, stopped)
    by_task = groupby(chosen, key=lambda s: (s.run_id, s.task_id))
    groups = [(rid, tid, [s.map_index for s in group]) for (rid, tid), group in by_task]
    # The queue ran dry (slots left free and every ready instance taken): a scheduler may have work. Ready ones left
    # behind by a cap are not a reason -- a scheduling pass cannot free a cap, and it would cost this claim time.
    notify = notify_if_short if len(chosen) < want and len(chosen) >= len(ready) else None
    if notify and not (is_postgres and groups):
        wakeups.notify(conn, notify)
    # Each run's DAG before the claims: with `commit` they are committed in their round trip, and nothing that could
    # fail may come between that and handing the claims to the worker.
    runs = {rid: specs.get(conn, rid) for rid, _, _ in groups}
    if is_postgres:  # one round trip for every (run, task) group, with the NOTIFY and the COMMIT
        rows = pipelined.claim(conn, groups, now, worker_id, hostname, pid, commit, notify) if groups else []
    else:
        rows = [
            list(conn.execute(CLAIM, {"k_run_id": rid, "k_task_id": tid, "k_indexes": indexes, "v_now": now,
                                      "v_hostname": hostname, "v_pid": pid, "v_worker_id": worker_id}))
            for rid, tid, indexes in groups
        ]  # fmt: skip
    claimed: list[Claimed] = []
    for (rid, tid, _), got in zip(groups, rows, strict=True):
        spec, dag_file = runs[rid]
        claimed.extend(Claimed(rid, spec.dag_id, dag_file, tid, *r, now) for r in got)  # index, try, max, args
    return claimed


# SLOTS compiled for the driver, per (dialect, one run): compiling it on every exchange was 15 % of the driver.
_SLOTS_SQL: dict[tuple[str, bool], tuple[str, dict[str, Any]]] = {}


def slots_sql(conn: Connection, want: int, run_id: str | None, now: datetime) -> tuple[str, dict[str, Any]]:
    """SLOTS as the driver's SQL and parameters, for the pipelined exchange (store/pipelined.py)."""
    key = (conn.dialect.name, run_id is not None)
    if key not in _SLOTS_SQL:
        compiled = SLOTS[run_id is not None].compile(dialect=conn.dialect)
        _SLOTS_SQL[key] = (str(compiled), dict(compiled.params))
    sql, fixed = _SLOTS_SQL[key]
    params = {**fixed, "s_queued": 2 * want, "s_retries": want, "s_run_id": run_id,
              "s_now": now.astimezone(timezone.utc).replace(tzinfo=None)}  # fmt: skip
    return sql, params


def parse_slots(rows: Iterable[Any]) -> tuple[list[Slot], list[Slot], dict[str, int]]:
    """SLOTS' rows as (running, ready, pools); columns by position: run, DAG, task, index, pool, pool slots, kind."""
    running: list[Slot] = []
    ready: list[Slot] = []
    pools: dict[str, int] = {}
    for r in rows:
        if r[6] == 3:
            pools[r[4]] = r[3]
        else:
            (running if r[6] == 0 else ready).append(Slot(r[0], r[1], r[2], r[3], r[4], r[5]))
    return running, ready, pools


def _slots(
    conn: Connection, want: int, run_id: str | None, now: datetime
) -> tuple[list[Slot], list[Slot], dict[str, int]]:
    """In one round trip (SLOTS): every running instance, the first ready ones (queued, then due retries), and
    every pool's slots (what holds them is the running instances' pool_slots)."""
    params = {"s_queued": 2 * want, "s_retries": want, "s_now": now, "s_run_id": run_id}
    running: list[Slot] = []
    ready: list[Slot] = []
    pools: dict[str, int] = {}
    for r in conn.execute(SLOTS[run_id is not None], params):
        if r.kind == 3:
            pools[r.pool] = r.map_index
        else:
            slot = Slot(r.run_id, r.dag_id, r.task_id, r.map_index, r.pool, r.pool_slots)
            (running if r.kind == 0 else ready).append(slot)
    return running, ready, pools


def _ready_past(condition: Any, want: int, run_id: str | None, blocked: set[tuple[str, str]], lock: bool) -> Any:
    """READY_PAST_CAPS: the first ready instances outside the (run, task) pairs at a cap, in claim order
    (ix_task_instance_state_priority); Postgres locks them FOR UPDATE SKIP LOCKED."""
    q = select(*_SLOT).where(condition).order_by(*CLAIM_ORDER).limit(want * 2)
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
    pools: dict[str, int],
    stopped: set[tuple[str, str]],
) -> list[Slot]:
    """Ready instances to claim: queued ones, then due retries; passes (run, task) pairs at a cap, and those
    `stopped` (failed past their tolerance)."""
    chosen: list[Slot] = []
    blocked: set[tuple[str, str]] = set(stopped)
    ready = (
        ti.state == TIState.QUEUED.value,
        and_(ti.state == TIState.UP_FOR_RETRY.value, ti.next_retry_at <= now),
    )
    for condition in ready:
        for _ in range(4):  # a few rounds, each past the (run, task) pairs that hit a cap
            rows = [Slot(*r) for r in conn.execute(_ready_past(condition, want, run_id, blocked, is_postgres))]
            specs_now = {r.run_id: specs.get(conn, r.run_id)[0] for r in rows}
            picked = pick(rows, running + chosen, specs_now, want - len(chosen), parallelism, pools)
            chosen.extend(picked)
            if len(chosen) >= want or len(rows) < want * 2:
                break
            got = {(p.run_id, p.task_id, p.map_index) for p in picked}
            blocked |= {(r.run_id, r.task_id) for r in rows if (r.run_id, r.task_id, r.map_index) not in got}
        if len(chosen) >= want:
            break
    return chosen
