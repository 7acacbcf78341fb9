"""`Store`: the named database operations the rest of minimap calls, on one database.

A thin facade: each method opens one transaction and runs the statements of one module of this package --
runs.py (create, find, start, lock), instances.py (count, expand, settle, reset), claims.py (the hot path),
completions.py (how attempts ended), leases.py (workers, heartbeats, hand-back, reclaim), specs.py (each run's
snapshot) and maintenance.py. Decisions that must be exclusive across processes and hosts are made under database
locks: a run's row lock for its scheduling, and one transaction-scoped advisory lock (SQLite: its single writer
lock) for claims, so caps hold everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from minimap.exceptions import DatabaseError, NotFoundError
from minimap.rules.tolerance import Counts, LaneTally
from minimap.snapshot import DagSpec
from minimap.states import TIState
from minimap.store import claims, completions, instances, lanes, leases, maintenance, pipelined, runs
from minimap.store.engine import database_error, mask
from minimap.store.rows import Claimed, Completion, InstanceRow, RunRow, TryRow, utcnow
from minimap.store.scheduling import RunTx
from minimap.store.specs import Specs

__all__ = ["RunTx", "Store"]


class Store:
    """Named database operations on one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self.specs = Specs()
        self.recorded = 0  # attempts' ends recorded through this store (the scheduler vacuums after a number)

    @property
    def url(self) -> str:
        """The database URL with its password masked."""
        return mask(str(self.engine.url))

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except DBAPIError as e:  # the server went away, timed out, or refused the statement
            if isinstance(e, IntegrityError):
                raise
            raise database_error(self.url, e) from e

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
        try:
            with self._tx() as conn:
                runs.insert_run(conn, run_id, dag_id, dag_file, snapshot, conf, instances)
        except IntegrityError:
            raise DatabaseError(f"a run with id {run_id!r} already exists") from None
        return self.run(run_id)

    def run(self, run_id: str) -> RunRow:
        """The run `run_id`, or NotFoundError."""
        with self._tx() as conn:
            row = runs.run(conn, run_id)
        if row is None:
            raise NotFoundError(f"no run {run_id!r}; `minimap runs` lists them")
        return row

    def latest_run(self, dag_id: str | None = None) -> RunRow:
        """The newest run (of `dag_id` if given), or NotFoundError."""
        with self._tx() as conn:
            rows = runs.newest(conn, 1, dag_id)
        if not rows:
            raise NotFoundError(
                f"no runs of DAG {dag_id!r} yet" if dag_id else "no runs yet; start one with `minimap run FILE`"
            )
        return rows[0]

    def runs(self, limit: int = 50, dag_id: str | None = None) -> list[RunRow]:
        """The newest runs first."""
        with self._tx() as conn:
            return runs.newest(conn, limit, dag_id)

    def unfinished_runs(self) -> list[RunRow]:
        """Runs that are queued or running, oldest first."""
        with self._tx() as conn:
            return runs.unfinished(conn)

    def runs_ahead(self, run_id: str) -> list[RunRow]:
        """Unfinished runs of the same DAG created before `run_id` (what max_active_runs makes it wait for)."""
        run = self.run(run_id)
        with self._tx() as conn:
            return runs.ahead(conn, run)

    def spec(self, run_id: str, conn: Connection | None = None) -> DagSpec:
        """The frozen DAG structure of a run (immutable, so cached)."""
        cached = self.specs.cached(run_id)
        if cached is not None:
            return cached[0]
        if conn is not None:
            return self.specs.get(conn, run_id)[0]
        with self._tx() as c:
            return self.specs.get(c, run_id)[0]

    def start_runs(self, dag_id: str, max_active_runs: int) -> None:
        """Move the oldest queued runs of `dag_id` to running while `max_active_runs` allows."""
        with self._tx() as conn:
            runs.start_queued(conn, dag_id, max_active_runs)

    @contextmanager
    def scheduling(self, run_id: str) -> Iterator[RunTx]:
        """The run's row locked for one scheduling pass; everything in it commits together."""
        with self._tx() as conn:
            row = runs.lock(conn, run_id)
            if row is None:
                raise NotFoundError(f"no run {run_id!r}")
            yield RunTx(self, conn, row)

    # --- workers: claims, completions, leases -----------------------------------------------

    def register_worker(self, worker_id: str, hostname: str, pid: int) -> None:
        with self._tx() as conn:
            leases.register(conn, worker_id, hostname, pid)

    def heartbeat(self, worker_id: str, state: str = "running") -> None:
        with self._tx() as conn:
            leases.heartbeat(conn, worker_id, state)

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
        notify: str | None = None,
    ) -> tuple[int, list[Claimed]]:
        """Record ended attempts and claim up to `want` more, in one transaction: (recorded, claimed).

        Safe to repeat after a failed commit: an attempt already recorded is no longer `running`. `notify`: a
        channel (store/wakeups.py) to notify when this commits, if something was recorded and then fewer ready
        instances than `want` were found and all were claimed (the queue ran dry: a scheduler may have work).
        """
        if not done and want <= 0:
            return 0, []
        slots = None
        with self._tx() as conn:
            if self.is_postgres:  # record, lock and read in one round trip (store/pipelined.py)
                sql, params = claims.slots_sql(conn, want, run_id, utcnow())
                recorded, rows = pipelined.record_lock_read(conn, worker_id, done, want, sql, params)
                slots = claims.parse_slots(rows)
            else:
                recorded = completions.record(conn, self.is_postgres, worker_id, done) if done else 0
            # Last in the transaction: on Postgres the claims' round trip carries the COMMIT, so the claim lock is
            # held for one round trip after the read, not two (the COMMIT below then has nothing left to do).
            claimed = (
                claims.claim(
                    conn, self.specs, self.is_postgres, worker_id, hostname, pid, want, parallelism, run_id, slots,
                    commit=True, notify_if_short=notify if recorded else None,
                )
                if want > 0
                else []
            )  # fmt: skip
        self.recorded += recorded
        return recorded, claimed

    def complete(self, worker_id: str, done: Sequence[Completion]) -> int:
        """Record ended attempts in one transaction; ones this worker no longer holds are ignored."""
        return self.exchange(worker_id, "", 0, done, 0, 0)[0]

    def hand_back(self, worker_id: str, claimed: Iterable[Claimed], reason: str) -> int:
        """Return unfinished attempts to the queue without using up a try (the try is recorded as failed)."""
        with self._tx() as conn:
            return leases.hand_back(conn, worker_id, claimed, reason)

    def reclaim_lost(
        self, lease_timeout: float, hostname: str, is_alive: Callable[[int], bool], max_lost: int = 3
    ) -> list[str]:
        """Queue again (or, after `max_lost` in a row, fail) attempts whose worker is lost; a line for each.

        A worker is lost when its last heartbeat is older than `lease_timeout`, or at once when it ran on
        this host and its process no longer exists. No retry is spent (see minimap.rules.attempts).
        """
        with self._tx() as conn:
            return leases.reclaim_lost(conn, lease_timeout, hostname, is_alive, max_lost)

    def held_by(self, worker_id: str) -> list[Claimed]:
        """Attempts the database says `worker_id` is running."""
        with self._tx() as conn:
            return leases.held_by(conn, worker_id)

    def vacuum(self) -> None:
        """Clear the dead row versions claims and completions leave in task_instance (Postgres)."""
        if self.is_postgres:
            try:
                with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    maintenance.vacuum(conn)
            except DBAPIError as e:
                raise database_error(self.url, e) from e

    def analyze(self) -> None:
        """Refresh the planner's statistics of task_instance (Postgres), after a large expansion."""
        if self.is_postgres:
            with self._tx() as conn:
                maintenance.analyze(conn)

    # --- reading ----------------------------------------------------------------------------

    def counts(self, run_id: str) -> dict[str, dict[TIState, int]]:
        """task_id -> state -> number of instances."""
        with self._tx() as conn:
            return instances.state_counts(conn, run_id)

    def tallies(self, run_id: str, spec: DagSpec, counts: Counts) -> dict[str, LaneTally]:
        """The lanes of the mapped groups with tolerated_failures that have a failed step (store/lanes.py)."""
        with self._tx() as conn:
            return lanes.tallies(conn, run_id, spec, counts)

    def instances(
        self,
        run_id: str,
        task_id: str | None = None,
        states: Sequence[TIState] | None = None,
        map_indexes: Sequence[int] | None = None,
    ) -> list[InstanceRow]:
        """Instances of a run in (task definition order is the caller's) task_id, map_index order."""
        with self._tx() as conn:
            return instances.listed(conn, run_id, task_id, states, map_indexes)

    def tries(self, run_id: str, task_id: str | None = None, map_index: int | None = None) -> list[TryRow]:
        """Recorded attempts, oldest first."""
        with self._tx() as conn:
            return instances.tries(conn, run_id, task_id, map_index)
