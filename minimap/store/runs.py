"""Runs: create one with its first instances, find them, start them under max_active_runs, lock one, finish one.

Statements are named below, each with what it guarantees; the functions run them on a connection the caller's
transaction owns (see `Store`), so several of them commit together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from minimap.rules.decisions import runs_to_start
from minimap.states import RunState
from minimap.store.rows import RunRow, utcnow
from minimap.store.tables import dag_run, task_instance

dr = dag_run.c

UNFINISHED = (RunState.QUEUED.value, RunState.RUNNING.value)
INSERT_BATCH = 5000  # rows per multi-row INSERT: bounded statement size on both backends

# RUN: one run by run_id (the unique index on dag_run.run_id); no lock.
RUN = select(dag_run).where(dr.run_id == bindparam("run_id"))

# LOCK_RUN: one run's row FOR UPDATE (Postgres: row lock; SQLite: the writer lock BEGIN IMMEDIATE took):
# one scheduling pass per run at a time, across processes and hosts.
LOCK_RUN = RUN.with_for_update()

# UNFINISHED_RUNS: queued and running runs, oldest first (ix_dag_run_state); no lock.
UNFINISHED_RUNS = select(dag_run).where(dr.state.in_(UNFINISHED)).order_by(dr.id)

# RUNS_AHEAD: unfinished runs of one DAG created before a given run (ix_dag_run_dag_id_state); no lock.
RUNS_AHEAD = (
    select(dag_run)
    .where(dr.dag_id == bindparam("dag_id"), dr.id < bindparam("id"), dr.state.in_(UNFINISHED))
    .order_by(dr.id)
)

# LOCK_DAG_RUNS: every unfinished run of one DAG, FOR UPDATE (ix_dag_run_dag_id_state): max_active_runs is
# counted and applied by one process at a time.
LOCK_DAG_RUNS = (
    select(dr.id, dr.state).where(dr.dag_id == bindparam("dag_id"), dr.state.in_(UNFINISHED)).order_by(dr.id)
).with_for_update()

# START_RUNS: the chosen queued runs become running (primary key); rows already locked by LOCK_DAG_RUNS.
START_RUNS = (
    update(dag_run)
    .where(dr.id.in_(bindparam("ids", expanding=True)))
    .values(state=RunState.RUNNING.value, started_at=bindparam("now"))
)

# SET_RUN_STATE: a run's state and end time (unique run_id); callers hold the run's row lock (LOCK_RUN).
SET_RUN_STATE = (
    update(dag_run)
    .where(dr.run_id == bindparam("k_run_id"))
    .values(state=bindparam("state"), ended_at=bindparam("ended_at"))
)


def insert_run(
    conn: Connection,
    run_id: str,
    dag_id: str,
    dag_file: str,
    snapshot: str,
    conf: dict[str, Any],
    instances: Sequence[dict[str, Any]],
) -> None:
    """INSERT the run (queued) and its first instances; raises IntegrityError if `run_id` exists (unique)."""
    conn.execute(
        insert(dag_run).values(
            run_id=run_id,
            dag_id=dag_id,
            state=RunState.QUEUED.value,
            dag_file=dag_file,
            snapshot=snapshot,
            conf=json.dumps(conf),
            created_at=utcnow(),
        )
    )
    rows = [{"run_id": run_id, "dag_id": dag_id, "try_number": 0, **i} for i in instances]
    for start in range(0, len(rows), INSERT_BATCH):
        conn.execute(insert(task_instance), rows[start : start + INSERT_BATCH])


def run(conn: Connection, run_id: str) -> RunRow | None:
    row = conn.execute(RUN, {"run_id": run_id}).first()
    return RunRow.from_row(row) if row is not None else None


def lock(conn: Connection, run_id: str) -> RunRow | None:
    """The run, its row locked until the transaction ends (LOCK_RUN)."""
    row = conn.execute(LOCK_RUN, {"run_id": run_id}).first()
    return RunRow.from_row(row) if row is not None else None


def newest(conn: Connection, limit: int, dag_id: str | None = None) -> list[RunRow]:
    """NEWEST_RUNS: runs by descending id (primary key, or ix_dag_run_dag_id_id for one DAG); no lock."""
    q = select(dag_run).order_by(dr.id.desc()).limit(limit)
    if dag_id is not None:
        q = q.where(dr.dag_id == dag_id)
    return [RunRow.from_row(r) for r in conn.execute(q)]


def unfinished(conn: Connection) -> list[RunRow]:
    return [RunRow.from_row(r) for r in conn.execute(UNFINISHED_RUNS)]


def ahead(conn: Connection, run: RunRow) -> list[RunRow]:
    return [RunRow.from_row(r) for r in conn.execute(RUNS_AHEAD, {"dag_id": run.dag_id, "id": run.id})]


def start_queued(conn: Connection, dag_id: str, max_active_runs: int) -> None:
    """Start the queued runs of `dag_id` that `max_active_runs` lets start (rules.decisions), under LOCK_DAG_RUNS."""
    rows = conn.execute(LOCK_DAG_RUNS, {"dag_id": dag_id}).all()
    starting = runs_to_start([(r.id, RunState(r.state)) for r in rows], max_active_runs)
    if starting:
        conn.execute(START_RUNS, {"ids": starting, "now": utcnow()})


def set_state(conn: Connection, run_id: str, state: RunState, ended_at: datetime | None) -> None:
    conn.execute(SET_RUN_STATE, {"k_run_id": run_id, "state": state.value, "ended_at": ended_at})
