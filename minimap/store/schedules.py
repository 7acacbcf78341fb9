"""The SQL of time schedules: the DAG registry (`dag`, `dag_file`) and scheduled or backfill runs.

A scheduled run is inserted if absent on the unique index (dag_id, logical_date), so any number of schedulers
(and a backfill) may create the same due run at once and exactly one row results: on Postgres the second insert
waits for the first to commit and then does nothing; SQLite has one writer at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError

from minimap.exceptions import DatabaseError, NotFoundError
from minimap.states import RunState
from minimap.store.engine import READ_ONLY, short
from minimap.store.rows import RunRow, utcnow
from minimap.store.storage import Store
from minimap.store.tables import dag, dag_file, dag_run, task_instance

dr = dag_run.c
dg = dag.c
df = dag_file.c
UNFINISHED = (RunState.QUEUED.value, RunState.RUNNING.value)


@dataclass(frozen=True)
class DagRow:
    """One DAG as the registry last parsed it."""

    dag_id: str
    fileloc: str
    schedule: str | None
    snapshot: dict[str, Any]
    paused: bool
    parsed_at: datetime
    error: str | None  # its file's error at the last change (the DAG as parsed before it is kept)


@contextmanager
def _tx(store: Store) -> Iterator[Connection]:
    try:
        with store.engine.begin() as conn:
            yield conn
    except (OperationalError, InterfaceError) as e:
        raise DatabaseError(f"database {store.url} failed: {short(e)}") from e


@contextmanager
def _read(store: Store) -> Iterator[Connection]:
    """A connection that only reads (SQLite: a deferred transaction, which never holds up a claim)."""
    try:
        with store.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            yield conn
    except (OperationalError, InterfaceError) as e:
        raise DatabaseError(f"database {store.url} failed: {short(e)}") from e


def _insert(store: Store, table: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING builder for this backend."""
    return (postgresql.insert if store.is_postgres else sqlite.insert)(table)


# --- the registry -------------------------------------------------------------------------------------------


def record_file(store: Store, fileloc: str, specs: Sequence[dict[str, Any]] | None, error: str | None) -> None:
    """What parsing `fileloc` gave: its DAGs' snapshots (recorded; DAGs it no longer defines are forgotten), or
    the error (its DAGs as parsed before are kept, as Airflow keeps them). A new DAG's paused state is
    its `is_paused_upon_creation`; a known DAG's is kept."""
    now = utcnow()
    with _tx(store) as conn:
        row = {"fileloc": fileloc, "parsed_at": now, "error": error}
        conn.execute(_insert(store, dag_file).values(row).on_conflict_do_nothing())
        conn.execute(update(dag_file).where(df.fileloc == fileloc).values(parsed_at=now, error=error))
        if specs is None:
            return
        for spec in specs:
            values = {
                "fileloc": fileloc,
                "schedule": spec.get("schedule"),
                "snapshot": json.dumps(spec),
                "parsed_at": now,
            }
            paused = bool(spec.get("paused_upon_creation"))
            conn.execute(
                _insert(store, dag).values(dag_id=spec["dag_id"], paused=paused, **values).on_conflict_do_nothing()
            )
            conn.execute(update(dag).where(dg.dag_id == spec["dag_id"]).values(**values))
        ids = [s["dag_id"] for s in specs]
        conn.execute(delete(dag).where(dg.fileloc == fileloc, dg.dag_id.not_in(ids)))


def forget_files(store: Store, filelocs: Sequence[str]) -> None:
    """Files that are gone: their DAGs and errors leave the registry (their runs stay)."""
    if not filelocs:
        return
    with _tx(store) as conn:
        conn.execute(delete(dag).where(dg.fileloc.in_(filelocs)))
        conn.execute(delete(dag_file).where(df.fileloc.in_(filelocs)))


def dags(store: Store, filelocs: Sequence[str] | None = None) -> list[DagRow]:
    """Recorded DAGs by dag_id (only those of `filelocs` if given), each with its file's error."""
    q = select(dag, df.error).join(dag_file, df.fileloc == dg.fileloc, isouter=True).order_by(dg.dag_id)
    if filelocs is not None:
        q = q.where(dg.fileloc.in_(filelocs))
    with _read(store) as conn:
        return [
            DagRow(r.dag_id, r.fileloc, r.schedule, json.loads(r.snapshot), bool(r.paused), r.parsed_at, r.error)
            for r in conn.execute(q)
        ]


def file_errors(store: Store) -> dict[str, str]:
    """Files whose last change did not load, and why."""
    with _read(store) as conn:
        return {r.fileloc: r.error for r in conn.execute(select(df.fileloc, df.error).where(df.error.is_not(None)))}


def set_paused(store: Store, dag_id: str, paused: bool) -> None:
    """Pause or unpause a recorded DAG (NotFoundError for one no scheduler has recorded)."""
    with _tx(store) as conn:
        done = conn.execute(update(dag).where(dg.dag_id == dag_id).values(paused=paused)).rowcount
    if not done:
        raise NotFoundError(
            f"no DAG {dag_id!r} recorded: `minimap scheduler --dags PATH` records the DAGs it finds "
            "(`minimap dags list` shows them)"
        )


# --- scheduled runs -----------------------------------------------------------------------------------------


def last_scheduled(store: Store, dag_id: str) -> tuple[datetime, datetime] | None:
    """The data interval of the DAG's latest scheduled or backfill run (by logical date; Airflow's "last
    automated run", where the schedule carries on from), or None."""
    # ix_dag_run_dag_id_logical_date walked backwards from the DAG's newest logical date
    q = (
        select(dr.data_interval_start, dr.data_interval_end)
        .where(dr.dag_id == dag_id, dr.run_type.in_(("scheduled", "backfill")), dr.logical_date.is_not(None))
        .order_by(dr.logical_date.desc())
        .limit(1)
    )
    with _read(store) as conn:
        row = conn.execute(q).first()
    return None if row is None else (row.data_interval_start, row.data_interval_end)


def active_runs(store: Store, dag_id: str) -> int:
    """The DAG's queued and running runs (what max_active_runs counts), of every type."""
    q = select(func.count()).select_from(dag_run).where(dr.dag_id == dag_id, dr.state.in_(UNFINISHED))
    with _read(store) as conn:
        return int(conn.execute(q).scalar_one())


def run_at(store: Store, dag_id: str, logical_date: datetime) -> RunRow | None:
    """The DAG's run for `logical_date`, whatever created it."""
    with _read(store) as conn:
        row = conn.execute(select(dag_run).where(dr.dag_id == dag_id, dr.logical_date == logical_date)).first()
    return None if row is None else RunRow.from_row(row)


def create_run_if_absent(
    store: Store,
    run_id: str,
    dag_id: str,
    dag_file: str,
    snapshot: str,
    instances: Sequence[dict[str, Any]],
    run_type: str,
    interval: tuple[datetime, datetime],
) -> bool:
    """Insert a queued run for the interval's logical date and its first instances, unless the DAG already has
    a run for that date (or that run id); True when this call created it."""
    now = utcnow()
    with _tx(store) as conn:
        inserted = conn.execute(
            _insert(store, dag_run)
            .values(
                run_id=run_id,
                dag_id=dag_id,
                state=RunState.QUEUED.value,
                dag_file=dag_file,
                snapshot=snapshot,
                conf="{}",
                created_at=now,
                run_type=run_type,
                logical_date=interval[0],
                data_interval_start=interval[0],
                data_interval_end=interval[1],
            )
            .on_conflict_do_nothing()
            .returning(dr.id)
        ).first()
        if inserted is None:  # the DAG has a run for that date (or that id) already
            return False
        rows = [{"run_id": run_id, "dag_id": dag_id, "try_number": 0, **i} for i in instances]
        for start in range(0, len(rows), 5000):
            conn.execute(task_instance.insert(), rows[start : start + 5000])
    return True
