"""Workers and their leases: registration, heartbeats, what a worker holds, handing attempts back, reclaiming
the attempts of workers that are gone."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from minimap.rules import attempts
from minimap.states import TIState
from minimap.store.completions import THIS_TRY, THIS_TRY_HELD, try_row
from minimap.store.rows import Claimed, Completion, utcnow
from minimap.store.tables import task_instance, task_try, worker

ti = task_instance.c
tr = task_try.c
wk = worker.c

# HEARTBEAT: a worker's lease renewed (primary key worker_id); no other row touched.
HEARTBEAT = (
    update(worker)
    .where(wk.worker_id == bindparam("k_worker_id"))
    .values(heartbeat_at=bindparam("now"), state=bindparam("state"))
)

# HELD_BY: the attempts the database says a worker runs (ix_task_instance_state_run_priority on
# state = running, then a filter on worker_id); no lock.
HELD_BY = select(
    ti.run_id, ti.dag_id, ti.task_id, ti.map_index, ti.try_number, ti.max_tries, ti.args, ti.started_at
).where(ti.state == TIState.RUNNING.value, ti.worker_id == bindparam("worker_id"))


# ENDED / ENDED_HELD: one attempt, if it is still that running try (primary key + the attempt guard; ENDED_HELD: and
# this worker holds it), ended as minimap.rules.attempts decided: queued again (at once: no retry delay) with the
# try given back (given_back = 1), or failed.
def _ended(guard: Any) -> Any:
    return (
        update(task_instance)
        .where(guard)
        .values(
            state=bindparam("state"),
            error=bindparam("error"),
            max_tries=ti.max_tries + bindparam("given_back"),
            queued_at=func.coalesce(bindparam("queued_at"), ti.queued_at),
            ended_at=bindparam("ended_at"),
            next_retry_at=bindparam("next_retry_at"),
        )
    )


ENDED = _ended(THIS_TRY)
ENDED_HELD = _ended(THIS_TRY_HELD)

# EARLIER_ENDINGS: how an instance's tries ended, newest first (task_try's primary key, backwards); no lock.
EARLIER_ENDINGS = (
    select(tr.error_type)
    .where(tr.run_id == bindparam("run_id"), tr.task_id == bindparam("task_id"), tr.map_index == bindparam("map_index"))
    .order_by(tr.try_number.desc())
)

# RUNNING_WITH_LEASE: every running attempt with its worker's host, pid and last heartbeat (state index, then the
# worker's primary key); no lock: each reclaim below re-checks its attempt with the guard.
RUNNING_WITH_LEASE = (
    select(
        ti.run_id,
        ti.task_id,
        ti.map_index,
        ti.try_number,
        ti.max_tries,
        ti.started_at,
        ti.worker_id,
        wk.hostname,
        wk.pid,
        wk.heartbeat_at,
    )
    .select_from(task_instance.outerjoin(worker, wk.worker_id == ti.worker_id))
    .where(ti.state == TIState.RUNNING.value)
)


def register(conn: Connection, worker_id: str, hostname: str, pid: int) -> None:
    """INSERT the worker (primary key worker_id: a name taken twice fails)."""
    now = utcnow()
    conn.execute(
        insert(worker).values(
            worker_id=worker_id, hostname=hostname, pid=pid, started_at=now, heartbeat_at=now, state="running"
        )
    )


def heartbeat(conn: Connection, worker_id: str, state: str) -> None:
    conn.execute(HEARTBEAT, {"k_worker_id": worker_id, "now": utcnow(), "state": state})


def held_by(conn: Connection, worker_id: str) -> list[Claimed]:
    rows = conn.execute(HELD_BY, {"worker_id": worker_id}).all()
    return [
        Claimed(r.run_id, r.dag_id, "", r.task_id, r.map_index, r.try_number, r.max_tries, r.args, r.started_at)
        for r in rows
    ]


def _key(k: Claimed, worker_id: str | None = None) -> dict[str, Any]:
    held = {"k_worker_id": worker_id} if worker_id is not None else {}
    return {"k_run_id": k.run_id, "k_task_id": k.task_id, "k_map_index": k.map_index, "k_try_number": k.try_number,
            **held}  # fmt: skip


def _ending(ending: attempts.Ending, now: datetime) -> dict[str, Any]:
    queued = ending.state is TIState.QUEUED
    return {"state": ending.state.value, "error": ending.error, "given_back": 0 if ending.spent else 1,
            "queued_at": now if queued else None, "ended_at": None if queued else now,
            "next_retry_at": ending.next_retry_at}  # fmt: skip


def hand_back(conn: Connection, worker_id: str, claimed: Iterable[Claimed], reason: str) -> int:
    """Return unfinished attempts to the queue without using up a try (the try is recorded as failed)."""
    now = utcnow()
    ending = attempts.handed_back(reason)
    done = []
    for k in claimed:
        if conn.execute(ENDED_HELD, {**_key(k, worker_id), **_ending(ending, now)}).rowcount:
            c = Completion(k, ending.try_state, now, error_type=attempts.HANDED_BACK, error_message=reason)
            done.append(try_row(worker_id, c))
    if done:
        conn.execute(insert(task_try), done)
    return len(done)


def reclaim_lost(
    conn: Connection, lease_timeout: float, hostname: str, is_alive: Callable[[int], bool], max_lost: int
) -> list[str]:
    """Queue again (after `max_lost` in a row: fail) attempts whose worker is lost; a line for each.

    A lost worker's death says nothing about the task: no retry is spent (minimap.rules.attempts).
    """
    now = utcnow()
    found: list[str] = []
    tries = []
    for r in conn.execute(RUNNING_WITH_LEASE).all():
        stale = r.heartbeat_at is None or (now - r.heartbeat_at).total_seconds() > lease_timeout
        gone = r.hostname == hostname and r.pid is not None and not is_alive(r.pid)
        if not (stale or gone):
            continue
        who = f"{r.hostname}:{r.pid}" if r.hostname else str(r.worker_id)
        reason = (
            f"worker {who} is gone (its process no longer exists)" if gone else f"worker {who} stopped heartbeating"
        )
        key = {"run_id": r.run_id, "task_id": r.task_id, "map_index": r.map_index}
        earlier = conn.execute(EARLIER_ENDINGS, key).scalars().all()
        ending = attempts.lost(reason, attempts.lost_in_a_row(earlier), max_lost)
        params = {"k_run_id": r.run_id, "k_task_id": r.task_id, "k_map_index": r.map_index,
                  "k_try_number": r.try_number, **_ending(ending, now)}  # fmt: skip
        if conn.execute(ENDED, params).rowcount:
            found.append(f"{r.task_id}[{r.map_index}] try {r.try_number} of run {r.run_id}: {ending.error}")
            tries.append(
                {
                    **key,
                    "try_number": r.try_number,
                    "state": ending.try_state.value,
                    "started_at": r.started_at,
                    "ended_at": now,
                    "hostname": r.hostname,
                    "pid": r.pid,
                    "error_type": attempts.WORKER_LOST,
                    "error_message": reason,
                    "log": None,
                    "log_truncated": False,
                }
            )
    if tries:
        conn.execute(insert(task_try), tries)
    return found
