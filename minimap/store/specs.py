"""Each run's frozen DAG snapshot and file, read from the database once per process (a run's snapshot never changes)."""

from __future__ import annotations

import threading

from sqlalchemy import Connection, bindparam, select

from minimap.exceptions import NotFoundError
from minimap.snapshot import DagSpec
from minimap.store.tables import dag_run

dr = dag_run.c

# SNAPSHOT: a run's snapshot and DAG file (the unique index on dag_run.run_id); no lock.
SNAPSHOT = select(dr.snapshot, dr.dag_file).where(dr.run_id == bindparam("run_id"))


class Specs:
    """A process-wide cache of (DagSpec, dag_file) by run_id, safe to share between threads."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[DagSpec, str]] = {}
        self._lock = threading.Lock()

    def cached(self, run_id: str) -> tuple[DagSpec, str] | None:
        with self._lock:
            return self._cache.get(run_id)

    def get(self, conn: Connection, run_id: str) -> tuple[DagSpec, str]:
        """The run's (spec, dag_file), read on `conn` the first time; NotFoundError for an unknown run."""
        cached = self.cached(run_id)
        if cached is not None:
            return cached
        row = conn.execute(SNAPSHOT, {"run_id": run_id}).first()
        if row is None:
            raise NotFoundError(f"no run {run_id!r}")
        loaded = (DagSpec.from_json(row.snapshot), row.dag_file)
        with self._lock:
            self._cache[run_id] = loaded
        return loaded
