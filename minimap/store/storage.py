"""All of minimap's SQL, as named operations on runs, instances, tries and workers.

Nothing else in minimap imports SQLAlchemy's query layer. Decisions that must be exclusive across
processes and hosts are made under database locks: a run's row lock for its scheduling, and one
transaction-scoped advisory lock (SQLite: its single writer lock) for claims, so caps hold everywhere.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, literal, not_, select, text, union_all, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from minimap.exceptions import DatabaseError, NotFoundError
from minimap.rules.claims import Slot, pick
from minimap.rules.expansion import MISSING
from minimap.snapshot import DagSpec
from minimap.states import RunState, TIState
from minimap.store.engine import mask, short
from minimap.store.lanes import aligned_results
from minimap.store.rows import Claimed, Completion, InstanceRow, RunRow, TryRow, decode, utcnow
from minimap.store.tables import dag_run, task_instance, task_try, worker

ti = task_instance.c
tr = task_try.c
dr = dag_run.c
wk = worker.c

_CLAIM_LOCK = 720_302  # pg_advisory_xact_lock key that serializes claims (the caps' critical section)


def state_counts(conn: Connection, run_id: str) -> dict[str, dict[TIState, int]]:
    counts: dict[str, dict[TIState, int]] = defaultdict(dict)
    q = select(ti.task_id, ti.state, func.count()).where(ti.run_id == run_id).group_by(ti.task_id, ti.state)
    for task_id, state, n in conn.execute(q):
        counts[task_id][TIState(state)] = n
    return dict(counts)


class Store:
    """Named database operations on one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._specs: dict[str, tuple[DagSpec, str]] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The database URL with its password masked."""
        return mask(str(self.engine.url))

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except (OperationalError, InterfaceError) as e:  # the server went away, refused, or timed out
            raise DatabaseError(f"database {self.url} failed: {short(e)}") from e

    # --- runs -------------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        dag_id: str,
        dag_file: str,
        snapshot: str,
        conf: dict[str, Any],
        instances: Sequence[dict[str, Any]],
    ) -> RunRow:
        """Insert a run (queued) and its first instances in one transaction."""
        now = utcnow()
        try:
            with self._tx() as conn:
                conn.execute(
                    insert(dag_run).values(
                        run_id=run_id,
                        dag_id=dag_id,
                        state=RunState.QUEUED.value,
                        dag_file=dag_file,
                        snapshot=snapshot,
                        conf=json.dumps(conf),
                        created_at=now,
                    )
                )
                rows = [{"run_id": run_id, "dag_id": dag_id, "try_number": 0, **i} for i in instances]
                for start in range(0, len(rows), 5000):
                    conn.execute(insert(task_instance), rows[start : start + 5000])
        except IntegrityError:
            raise DatabaseError(f"a run with id {run_id!r} already exists") from None
        return self.run(run_id)

    def run(self, run_id: str) -> RunRow:
        """The run `run_id`, or NotFoundError."""
        with self._tx() as conn:
            row = conn.execute(select(dag_run).where(dr.run_id == run_id)).first()
        if row is None:
            raise NotFoundError(f"no run {run_id!r}; `minimap runs` lists them")
        return RunRow.from_row(row)

    def latest_run(self, dag_id: str | None = None) -> RunRow:
        """The newest run (of `dag_id` if given), or NotFoundError."""
        q = select(dag_run).order_by(dr.id.desc()).limit(1)
        if dag_id is not None:
            q = q.where(dr.dag_id == dag_id)
        with self._tx() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise NotFoundError(
                f"no runs of DAG {dag_id!r} yet" if dag_id else "no runs yet; start one with `minimap run FILE`"
            )
        return RunRow.from_row(row)

    def runs(self, limit: int = 50, dag_id: str | None = None) -> list[RunRow]:
        """The newest runs first."""
        q = select(dag_run).order_by(dr.id.desc()).limit(limit)
        if dag_id is not None:
            q = q.where(dr.dag_id == dag_id)
        with self._tx() as conn:
            return [RunRow.from_row(r) for r in conn.execute(q)]

    def unfinished_runs(self) -> list[RunRow]:
        """Runs that are queued or running, oldest first."""
        q = select(dag_run).where(dr.state.in_([RunState.QUEUED.value, RunState.RUNNING.value])).order_by(dr.id)
        with self._tx() as conn:
            return [RunRow.from_row(r) for r in conn.execute(q)]

    def runs_ahead(self, run_id: str) -> list[RunRow]:
        """Unfinished runs of the same DAG created before `run_id` (what max_active_runs makes it wait for)."""
        run = self.run(run_id)
        q = (
            select(dag_run)
            .where(
                dr.dag_id == run.dag_id, dr.id < run.id, dr.state.in_([RunState.QUEUED.value, RunState.RUNNING.value])
            )
            .order_by(dr.id)
        )
        with self._tx() as conn:
            return [RunRow.from_row(r) for r in conn.execute(q)]

    def spec(self, run_id: str, conn: Connection | None = None) -> DagSpec:
        """The frozen DAG structure of a run (immutable, so cached)."""
        return self._spec_and_file(run_id, conn)[0]

    def dag_file(self, run_id: str) -> str:
        return self._spec_and_file(run_id)[1]

    def _spec_and_file(self, run_id: str, conn: Connection | None = None) -> tuple[DagSpec, str]:
        with self._lock:
            cached = self._specs.get(run_id)
        if cached is None:
            q = select(dr.snapshot, dr.dag_file).where(dr.run_id == run_id)
            if conn is not None:
                row = conn.execute(q).first()
            else:
                with self._tx() as c:
                    row = c.execute(q).first()
            if row is None:
                raise NotFoundError(f"no run {run_id!r}")
            cached = (DagSpec.from_json(row.snapshot), row.dag_file)
            with self._lock:
                self._specs[run_id] = cached
        return cached

    def start_runs(self, dag_id: str, max_active_runs: int) -> None:
        """Move the oldest queued runs of `dag_id` to running while `max_active_runs` allows."""
        with self._tx() as conn:
            q = (
                select(dr.id, dr.state)
                .where(dr.dag_id == dag_id, dr.state.in_([RunState.QUEUED.value, RunState.RUNNING.value]))
                .order_by(dr.id)
                .with_for_update()
            )
            rows = conn.execute(q).all()
            free = max_active_runs - sum(1 for r in rows if r.state == RunState.RUNNING.value)
            starting = [r.id for r in rows if r.state == RunState.QUEUED.value][: max(free, 0)]
            if starting:
                conn.execute(
                    update(dag_run).where(dr.id.in_(starting)).values(state=RunState.RUNNING.value, started_at=utcnow())
                )

    @contextmanager
    def scheduling(self, run_id: str) -> Iterator[RunTx]:
        """The run's row locked for one scheduling pass; everything in it commits together."""
        with self._tx() as conn:
            row = conn.execute(select(dag_run).where(dr.run_id == run_id).with_for_update()).first()
            if row is None:
                raise NotFoundError(f"no run {run_id!r}")
            yield RunTx(self, conn, RunRow.from_row(row))

    # --- workers ----------------------------------------------------------------------------

    def register_worker(self, worker_id: str, hostname: str, pid: int) -> None:
        now = utcnow()
        with self._tx() as conn:
            conn.execute(
                insert(worker).values(
                    worker_id=worker_id,
                    hostname=hostname,
                    pid=pid,
                    started_at=now,
                    heartbeat_at=now,
                    state="running",
                )
            )

    def heartbeat(self, worker_id: str, state: str = "running") -> None:
        with self._tx() as conn:
            conn.execute(update(worker).where(wk.worker_id == worker_id).values(heartbeat_at=utcnow(), state=state))

    def claim(
        self, worker_id: str, hostname: str, pid: int, want: int, parallelism: int, run_id: str | None = None
    ) -> list[Claimed]:
        """Claim up to `want` ready instances (of `run_id` if given) without exceeding any cap."""
        return self.exchange(worker_id, hostname, pid, [], want, parallelism, run_id)[1]

    def exchange(
        self,
        worker_id: str,
        hostname: str,
        pid: int,
        done: Sequence[Completion],
        want: int,
        parallelism: int,
        run_id: str | None = None,
    ) -> tuple[int, list[Claimed]]:
        """Record ended attempts and claim up to `want` more, in one transaction: (recorded, claimed).

        Safe to repeat after a failed commit: an attempt already recorded is no longer `running`.
        """
        if not done and want <= 0:
            return 0, []
        with self._tx() as conn:
            recorded = self._record(conn, worker_id, done) if done else 0
            claimed = self._claim(conn, worker_id, hostname, pid, want, parallelism, run_id) if want > 0 else []
        return recorded, claimed

    def _claim(
        self, conn: Connection, worker_id: str, hostname: str, pid: int, want: int, parallelism: int, run_id: str | None
    ) -> list[Claimed]:
        if self.is_postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CLAIM_LOCK})
        # Read the clock only once the lock is held: a freed slot was committed before this point, so a
        # recorded start never precedes the recorded end of the attempt whose slot it takes.
        now = utcnow()
        running, ready = self._slots(conn, want, run_id, now)
        if len(running) >= parallelism:
            return []
        specs = {r.run_id: self.spec(r.run_id, conn) for r in ready}
        chosen = pick(ready, running, specs, want, parallelism)
        if len(chosen) < want and len(ready) >= 2 * want:
            # more is queued than one batch and a cap passed some of it over: look past the capped pairs
            chosen = self._choose(conn, running, want, parallelism, run_id, now)
        claimed: list[Claimed] = []
        for (rid, tid), group in groupby(chosen, key=lambda s: (s.run_id, s.task_id)):
            spec, dag_file = self._spec_and_file(rid, conn)
            params = {"k_run_id": rid, "k_task_id": tid, "k_indexes": [s.map_index for s in group], "v_now": now,
                      "v_hostname": hostname, "v_pid": pid, "v_worker_id": worker_id}  # fmt: skip
            for r in conn.execute(_CLAIM, params):
                claimed.append(
                    Claimed(rid, spec.dag_id, dag_file, tid, r.map_index, r.try_number, r.max_tries, r.args, now)
                )
        return claimed

    def _slots(self, conn: Connection, want: int, run_id: str | None, now: datetime) -> tuple[list[Slot], list[Slot]]:
        """In one round trip: every running instance, and the first ready ones (queued, then due retries)."""
        params = {"s_queued": 2 * want, "s_retries": want, "s_now": now, "s_run_id": run_id}
        running: list[Slot] = []
        ready: list[Slot] = []
        for r in conn.execute(_SLOTS[run_id is not None], params):
            (running if r.kind == 0 else ready).append(Slot(r.run_id, r.dag_id, r.task_id, r.map_index))
        return running, ready

    def _choose(
        self,
        conn: Connection,
        running: list[Slot],
        want: int,
        parallelism: int,
        run_id: str | None,
        now: datetime,
    ) -> list[Slot]:
        """Ready instances to claim: queued ones, then due retries; passes (run, task) pairs at a cap."""
        cols = (ti.run_id, ti.dag_id, ti.task_id, ti.map_index)
        chosen: list[Slot] = []
        blocked: set[tuple[str, str]] = set()
        ready = (
            ti.state == TIState.QUEUED.value,
            and_(ti.state == TIState.UP_FOR_RETRY.value, ti.next_retry_at <= now),
        )
        for condition in ready:
            for _ in range(4):  # a few rounds, each past the (run, task) pairs that hit a cap
                q = select(*cols).where(condition).order_by(ti.run_id, ti.task_id, ti.map_index).limit(want * 2)
                if run_id is not None:
                    q = q.where(ti.run_id == run_id)
                for rid, tid in blocked:
                    q = q.where(not_(and_(ti.run_id == rid, ti.task_id == tid)))
                if self.is_postgres:
                    q = q.with_for_update(skip_locked=True)
                rows = [Slot(*r) for r in conn.execute(q)]
                specs = {r.run_id: self.spec(r.run_id, conn) for r in rows}
                picked = pick(rows, running + chosen, specs, want - len(chosen), parallelism)
                chosen.extend(picked)
                if len(chosen) >= want or len(rows) < want * 2:
                    break
                got = {(p.run_id, p.task_id, p.map_index) for p in picked}
                blocked |= {(r.run_id, r.task_id) for r in rows if (r.run_id, r.task_id, r.map_index) not in got}
            if len(chosen) >= want:
                break
        return chosen

    def complete(self, worker_id: str, done: Sequence[Completion]) -> int:
        """Record ended attempts in one transaction; ones this worker no longer holds are ignored."""
        return self.exchange(worker_id, "", 0, done, 0, 0)[0]

    def _record(self, conn: Connection, worker_id: str, done: Sequence[Completion]) -> int:
        if self.is_postgres:  # one round trip: update the instances and insert their tries
            rows = [{**self._complete_params(worker_id, c), **self._try_extra(c)} for c in done]
            arrays = {name: [r[name] for r in rows] for name in rows[0] if name != "k_worker_id"}
            return len(conn.execute(_RECORD_PG, {**arrays, "worker_id": worker_id}).all())
        kept = [c for c in done if conn.execute(_COMPLETE_ONE, self._complete_params(worker_id, c)).rowcount]
        if kept:
            conn.execute(insert(task_try), [self._try_row(worker_id, c) for c in kept])
        return len(kept)

    @staticmethod
    def _try_extra(c: Completion) -> dict[str, Any]:
        try_state = TIState.FAILED if c.state is TIState.UP_FOR_RETRY else c.state
        return {"try_state": try_state.value, "error_type": c.error_type, "error_message": c.error_message,
                "log": c.log, "log_truncated": c.log_truncated}  # fmt: skip

    @staticmethod
    def _complete_params(worker_id: str, c: Completion) -> dict[str, Any]:
        k = c.claimed
        return {
            "k_run_id": k.run_id, "k_task_id": k.task_id, "k_map_index": k.map_index, "k_try_number": k.try_number,
            "k_worker_id": worker_id, "state": c.state.value, "result": c.result, "label": c.label,
            "error": c.error_line, "ended_at": _naive(c.ended_at), "next_retry_at": _naive(c.next_retry_at),
        }  # fmt: skip

    @staticmethod
    def _try_row(worker_id: str, c: Completion) -> dict[str, Any]:
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
            "error_message": c.error_message,
            "log": c.log,
            "log_truncated": c.log_truncated,
        }

    def hand_back(self, worker_id: str, claimed: Iterable[Claimed], reason: str) -> int:
        """Return unfinished attempts to the queue without using up a try (the try is recorded as failed)."""
        now = utcnow()
        done = []
        with self._tx() as conn:
            for k in claimed:
                res = conn.execute(
                    update(task_instance)
                    .where(_attempt(k.run_id, k.task_id, k.map_index, k.try_number, worker_id))
                    .values(state=TIState.QUEUED.value, max_tries=ti.max_tries + 1, error=reason, queued_at=now)
                )
                if res.rowcount:
                    c = Completion(k, TIState.FAILED, now, error_type="Interrupted", error_message=reason)
                    done.append(self._try_row(worker_id, c))
            if done:
                conn.execute(insert(task_try), done)
        return len(done)

    def reclaim_lost(self, lease_timeout: float, hostname: str, is_alive: Callable[[int], bool]) -> list[str]:
        """Fail (or send to retry) attempts whose worker stopped heartbeating; a description of each.

        A worker is lost when its last heartbeat is older than `lease_timeout`, or at once when it ran on
        this host and its process no longer exists.
        """
        now = utcnow()
        found: list[str] = []
        with self._tx() as conn:
            q = (
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
            tries = []
            for r in conn.execute(q):
                stale = r.heartbeat_at is None or (now - r.heartbeat_at).total_seconds() > lease_timeout
                gone = r.hostname == hostname and r.pid is not None and not is_alive(r.pid)
                if not (stale or gone):
                    continue
                who = f"{r.hostname}:{r.pid}" if r.hostname else str(r.worker_id)
                reason = (
                    f"worker {who} is gone (its process no longer exists)"
                    if gone
                    else f"worker {who} stopped heartbeating"
                )
                retry = r.try_number < r.max_tries
                spec = self.spec(r.run_id, conn)
                delay = spec.tasks[r.task_id].retry_delay_after(r.try_number) if retry else 0
                res = conn.execute(
                    update(task_instance)
                    .where(_attempt(r.run_id, r.task_id, r.map_index, r.try_number))
                    .values(
                        state=(TIState.UP_FOR_RETRY if retry else TIState.FAILED).value,
                        error=f"WorkerLost: {reason}",
                        ended_at=now,
                        next_retry_at=now + timedelta(seconds=delay) if retry else None,
                    )
                )
                if res.rowcount:
                    found.append(f"{r.task_id}[{r.map_index}] try {r.try_number} of run {r.run_id}: {reason}")
                    tries.append(
                        {
                            "run_id": r.run_id,
                            "task_id": r.task_id,
                            "map_index": r.map_index,
                            "try_number": r.try_number,
                            "state": TIState.FAILED.value,
                            "started_at": r.started_at,
                            "ended_at": now,
                            "hostname": r.hostname,
                            "pid": r.pid,
                            "error_type": "WorkerLost",
                            "error_message": reason,
                            "log": None,
                            "log_truncated": False,
                        }
                    )
            if tries:
                conn.execute(insert(task_try), tries)
        return found

    def vacuum(self) -> None:
        """Clear the dead row versions claims and completions leave in task_instance (Postgres).

        Every state change leaves the old version's index entries behind; until they are vacuumed, each claim
        steps over all of them (measured: 1 ms per claim at the start of a 30,000-instance run, 8 ms at its
        end). Autovacuum comes a minute or more later; a VACUUM blocks neither reads nor writes.
        """
        if self.is_postgres:
            try:
                with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM task_instance"))
            except (OperationalError, InterfaceError) as e:
                raise DatabaseError(f"database {self.url} failed: {short(e)}") from e

    def analyze(self) -> None:
        """Refresh the planner's statistics of task_instance (Postgres), after a large expansion.

        A table that grew from nothing within seconds has none yet (autovacuum analyzes only after a minute
        or so); without them Postgres scans `state` with bitmap scans, which walk every dead index entry that
        claims leave behind, while plain index scans mark those entries dead once and skip them afterwards.
        """
        if self.is_postgres:
            with self._tx() as conn:
                conn.execute(text("ANALYZE task_instance"))

    def held_by(self, worker_id: str) -> list[Claimed]:
        """Attempts the database says `worker_id` is running."""
        q = select(
            ti.run_id, ti.dag_id, ti.task_id, ti.map_index, ti.try_number, ti.max_tries, ti.args, ti.started_at
        ).where(ti.state == TIState.RUNNING.value, ti.worker_id == worker_id)
        with self._tx() as conn:
            rows = conn.execute(q).all()
        return [
            Claimed(r.run_id, r.dag_id, "", r.task_id, r.map_index, r.try_number, r.max_tries, r.args, r.started_at)
            for r in rows
        ]

    # --- reading ----------------------------------------------------------------------------

    def counts(self, run_id: str) -> dict[str, dict[TIState, int]]:
        """task_id -> state -> number of instances."""
        with self._tx() as conn:
            return state_counts(conn, run_id)

    def instances(
        self,
        run_id: str,
        task_id: str | None = None,
        states: Sequence[TIState] | None = None,
        map_indexes: Sequence[int] | None = None,
    ) -> list[InstanceRow]:
        """Instances of a run in (task definition order is the caller's) task_id, map_index order."""
        q = select(task_instance).where(ti.run_id == run_id).order_by(ti.task_id, ti.map_index)
        if task_id is not None:
            q = q.where(ti.task_id == task_id)
        if states:
            q = q.where(ti.state.in_([s.value for s in states]))
        if map_indexes is not None:
            q = q.where(ti.map_index.in_(list(map_indexes)))
        with self._tx() as conn:
            return [InstanceRow.from_row(r) for r in conn.execute(q)]

    def tries(self, run_id: str, task_id: str | None = None, map_index: int | None = None) -> list[TryRow]:
        """Recorded attempts, oldest first."""
        q = select(task_try).where(tr.run_id == run_id).order_by(tr.task_id, tr.map_index, tr.try_number)
        if task_id is not None:
            q = q.where(tr.task_id == task_id)
        if map_index is not None:
            q = q.where(tr.map_index == map_index)
        with self._tx() as conn:
            return [TryRow.from_row(r) for r in conn.execute(q)]


def _attempt(run_id: Any, task_id: Any, map_index: Any, try_number: Any, worker_id: Any = None) -> Any:
    """This very attempt, still running (and held by `worker_id` if given): the guard that makes a late,
    repeated or reclaimed report change nothing."""
    held = (ti.worker_id == worker_id,) if worker_id is not None else ()
    return and_(
        ti.run_id == run_id,
        ti.task_id == task_id,
        ti.map_index == map_index,
        ti.state == TIState.RUNNING.value,
        ti.try_number == try_number,
        *held,
    )


def _naive(t: datetime | None) -> datetime | None:
    """UTC without tzinfo, as the UTCDateTime columns store it (for statements that bypass the type)."""
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t is not None else None


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


# Built once: constructing this per claim was 63% of a claim's Python time.
_SLOTS = {one_run: _slots_statement(one_run) for one_run in (False, True)}

# Claiming: queued instances, or retries that are due, become this worker's running attempt.
_CLAIM = (
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

# Recording an attempt's end: only while this worker still holds that very try.
_COMPLETE_ONE = (
    update(task_instance)
    .where(
        _attempt(
            bindparam("k_run_id"),
            bindparam("k_task_id"),
            bindparam("k_map_index"),
            bindparam("k_try_number"),
            bindparam("k_worker_id"),
        )
    )
    .values(
        state=bindparam("state"),
        result=bindparam("result"),
        label=bindparam("label"),
        error=bindparam("error"),
        ended_at=bindparam("ended_at"),
        next_retry_at=bindparam("next_retry_at"),
    )
)

_RECORD_PG = text(
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
    RETURNING run_id
    """
)


class RunTx:
    """One locked scheduling pass over one run (see `Store.scheduling`)."""

    def __init__(self, store: Store, conn: Connection, run: RunRow) -> None:
        self.store = store
        self.conn = conn
        self.run = run

    def counts(self) -> dict[str, dict[TIState, int]]:
        return state_counts(self.conn, self.run.run_id)

    def results(self, spec: DagSpec, task_ids: Iterable[str]) -> dict[str, Any]:
        """Upstream results as arguments see them: a mapped task's non-None results by map_index."""
        values: dict[str, Any] = {}
        for tid in task_ids:
            q = select(ti.state, ti.result).where(ti.run_id == self.run.run_id, ti.task_id == tid)
            if spec.tasks[tid].group is not None:  # a group's lanes: aligned, None where a lane did not succeed
                values[tid] = aligned_results(self.conn, self.run.run_id, tid)
            elif spec.tasks[tid].mapped:
                q = q.where(ti.state == TIState.SUCCESS.value, ti.result.is_not(None)).order_by(ti.map_index)
                values[tid] = [json.loads(r.result) for r in self.conn.execute(q)]
            else:
                row = self.conn.execute(q.where(ti.map_index == -1)).first()
                ok = row is not None and row.state == TIState.SUCCESS.value
                values[tid] = decode(row.result) if ok and row is not None else MISSING
        return values

    def _where_waiting(self, task_id: str) -> Any:
        return and_(ti.run_id == self.run.run_id, ti.task_id == task_id, ti.state == TIState.SCHEDULED.value)

    def settle(self, task_id: str, state: TIState, error: str | None = None) -> None:
        """Give every waiting instance of `task_id` a final state without running it."""
        self.conn.execute(
            update(task_instance)
            .where(self._where_waiting(task_id))
            .values(state=state.value, ended_at=utcnow(), error=error)
        )

    def queue(self, task_id: str, args: str) -> None:
        """Queue the (unmapped) task's waiting instance with its resolved arguments."""
        self.conn.execute(
            update(task_instance)
            .where(self._where_waiting(task_id), ti.map_index == -1)
            .values(state=TIState.QUEUED.value, args=args, queued_at=utcnow())
        )

    def expand(self, task_id: str, args: Sequence[str], max_tries: int) -> None:
        """Turn the task's waiting instances into one queued instance per element of `args`.

        The map_index -1 placeholder becomes 0..N-1 (N = 0: it is skipped). On a re-expansion, waiting
        indexes get their new arguments, new ones are added, and waiting ones past the end are removed.
        """
        run_id, now, n = self.run.run_id, utcnow(), len(args)
        key = and_(ti.run_id == run_id, ti.task_id == task_id)
        existing = {r.map_index: r for r in self.conn.execute(select(ti.map_index, ti.state, ti.args).where(key))}
        placeholder = existing.pop(-1, None)
        if placeholder is not None:
            if n == 0:
                self.settle(task_id, TIState.SKIPPED)
                return
            self.conn.execute(delete(task_instance).where(key, ti.map_index == -1))
        new = [
            {
                "run_id": run_id,
                "task_id": task_id,
                "map_index": i,
                "dag_id": self.run.dag_id,
                "state": TIState.QUEUED.value,
                "try_number": 0,
                "max_tries": max_tries,
                "args": a,
                "queued_at": now,
            }
            for i, a in enumerate(args)
            if i not in existing
        ]
        for start in range(0, len(new), 5000):
            self.conn.execute(insert(task_instance), new[start : start + 5000])
        waiting = TIState.SCHEDULED.value
        for i, r in existing.items():
            if r.state == waiting and i < n and r.args != args[i]:
                self.conn.execute(update(task_instance).where(key, ti.map_index == i).values(args=args[i]))
        self.conn.execute(
            update(task_instance)
            .where(key, ti.state == waiting, ti.map_index < n)
            .values(state=TIState.QUEUED.value, queued_at=now)
        )
        self.conn.execute(
            update(task_instance)
            .where(key, ti.state == waiting, ti.map_index >= n)
            .values(state=TIState.REMOVED.value, ended_at=now)
        )

    def instance_states(self) -> list[tuple[str, int, TIState]]:
        q = select(ti.task_id, ti.map_index, ti.state).where(ti.run_id == self.run.run_id)
        return [(r.task_id, r.map_index, TIState(r.state)) for r in self.conn.execute(q)]

    def reset(self, keys: Sequence[tuple[str, int]], retries: dict[str, int]) -> None:
        """Send instances back to be scheduled with fresh tries (try_number keeps counting)."""
        by_task: dict[str, list[int]] = defaultdict(list)
        for task_id, map_index in keys:
            by_task[task_id].append(map_index)
        for task_id, indexes in by_task.items():
            for start in range(0, len(indexes), 5000):
                self.conn.execute(
                    update(task_instance)
                    .where(
                        ti.run_id == self.run.run_id,
                        ti.task_id == task_id,
                        ti.map_index.in_(indexes[start : start + 5000]),
                        ti.state != TIState.RUNNING.value,
                    )
                    .values(
                        state=TIState.SCHEDULED.value,
                        max_tries=ti.try_number + retries[task_id] + 1,
                        error=None,
                        next_retry_at=None,
                        ended_at=None,
                        worker_id=None,
                    )
                )
        if keys:
            self.conn.execute(
                update(dag_run).where(dr.run_id == self.run.run_id).values(state=RunState.RUNNING.value, ended_at=None)
            )

    def finish(self, state: RunState) -> None:
        self.conn.execute(
            update(dag_run).where(dr.run_id == self.run.run_id).values(state=state.value, ended_at=utcnow())
        )
