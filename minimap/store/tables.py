"""The database schema (SQLAlchemy Core tables). Alembic migrations in alembic/ create it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
    text,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as naive UTC on every backend and read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


PARTIAL_INDEXES = (("queued", "queued"), ("running", "running"), ("retrying", "up_for_retry"))

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

dag_run = Table(
    "dag_run",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(250), nullable=False, unique=True),
    Column("dag_id", String(250), nullable=False),
    Column("state", String(20), nullable=False),
    Column("dag_file", Text, nullable=False),
    Column("snapshot", Text, nullable=False),  # the DAG's frozen structure, JSON
    Column("conf", Text, nullable=False),  # JSON
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("run_type", String(20), nullable=False, server_default="manual"),  # manual / scheduled / backfill
    Column("logical_date", UTCDateTime),  # NULL for a manual run (its logical date is its created_at)
    Column("data_interval_start", UTCDateTime),
    Column("data_interval_end", UTCDateTime),
    Index("ix_dag_run_dag_id_state", "dag_id", "state"),
    # One run per DAG and logical date, whoever creates it (several schedulers, a backfill): inserts are
    # insert-if-absent on it. NULLs are distinct on SQLite and Postgres, so manual runs never collide.
    Index("ix_dag_run_dag_id_logical_date", "dag_id", "logical_date", unique=True),
    Index("ix_dag_run_state", "state"),
    Index("ix_dag_run_dag_id_id", "dag_id", "id"),  # one DAG's runs, newest first (minimap/store/reads.py)
)

task_instance = Table(
    "task_instance",
    metadata,
    Column("run_id", String(250), ForeignKey("dag_run.run_id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", String(250), primary_key=True),
    Column("map_index", Integer, primary_key=True),
    Column("dag_id", String(250), nullable=False),  # copied from the run: caps across runs need it
    Column("state", String(20), nullable=False),
    Column("try_number", Integer, nullable=False),  # attempts started so far
    Column("max_tries", Integer, nullable=False),  # attempts allowed before failing for good
    Column("args", Text),  # resolved keyword arguments, JSON (see minimap.rules.expansion)
    Column("result", Text),  # the return value, JSON; NULL when None or not returned
    Column("label", Text),  # rendered map_index_template
    Column("error", Text),  # the last attempt's error line
    Column("queued_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("next_retry_at", UTCDateTime),
    Column("hostname", String(250)),
    Column("pid", Integer),
    Column("worker_id", String(100)),
    # Copied from the snapshot when the instance is made, so the claim reads and orders by them in SQL.
    Column("pool", String(256), nullable=False, server_default="default_pool"),
    Column("pool_slots", Integer, nullable=False, server_default="1"),
    Column("priority_weight", Integer, nullable=False, server_default="1"),  # effective (after weight_rule)
    # The read side (minimap/store/reads.py): a run's per-task counts, first start and last end, and the top-N
    # sort keys of a task's instances, read from this index alone (SQLite: 100,000 instances in 17 ms, not 98).
    Index("ix_task_instance_run_task_state_times", "run_id", "task_id", "state", "map_index", "started_at", "ended_at"),
    # Partial indexes on the states claims look up (migration 0006; Postgres only since 0008, see POSTGRES_ONLY):
    # they hold only the instances that wait or run, so they stay small however many finished instances old runs
    # leave in the table.
    *(
        Index(
            f"ix_task_instance_{name}",
            "run_id",
            "task_id",
            "map_index",
            postgresql_where=text(f"state = '{state}'"),
        ).ddl_if(dialect="postgresql")
        for name, state in PARTIAL_INDEXES
    ),  # fmt: skip
)

# The claim's scans of ready instances, highest priority first (minimap/store/storage.py): across runs (a worker
# daemon), and within one run (`minimap run`), each an index walk in the claim's order with no sort. Both lead with
# state, so they also serve what the index they replaced (state, run_id, task_id, map_index) served.
Index(
    "ix_task_instance_state_priority",
    task_instance.c.state,
    task_instance.c.priority_weight.desc(),
    task_instance.c.run_id,
    task_instance.c.task_id,
    task_instance.c.map_index,
)
Index(
    "ix_task_instance_state_run_priority",
    task_instance.c.state,
    task_instance.c.run_id,
    task_instance.c.priority_weight.desc(),
    task_instance.c.task_id,
    task_instance.c.map_index,
)

# The one-run claim's queued branch in its order, over queued instances only (migration 0007): with millions of
# finished instances the planner expects one queued instance of a new run and would otherwise read all of them
# through ix_task_instance_queued and sort them on every claim.
Index(
    "ix_task_instance_queued_claim",
    task_instance.c.run_id,
    task_instance.c.priority_weight.desc(),
    task_instance.c.task_id,
    task_instance.c.map_index,
    postgresql_where=text("state = 'queued'"),
).ddl_if(dialect="postgresql")

# The partial indexes above answer Postgres's planner, whose estimates go wrong on a big, young or unvacuumed table.
# SQLite's plans use the full indexes (state first; run, task, state) and never needed them, while every insert and
# state change paid for them: `minimap run` of 10,000 no-ops took ~20 % longer with them (migration 0008).
POSTGRES_ONLY = frozenset(
    {*(f"ix_task_instance_{name}" for name, _ in PARTIAL_INDEXES), "ix_task_instance_queued_claim"}
)


def on_dialect(dialect: str) -> Any:
    """Alembic's include_object for `dialect`: the models without the indexes that database does not have (Alembic
    does not read Index.ddl_if)."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        return not (type_ == "index" and name in POSTGRES_ONLY and dialect != "postgresql")

    return include


task_try = Table(
    "task_try",
    metadata,
    Column("run_id", String(250), ForeignKey("dag_run.run_id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", String(250), primary_key=True),
    Column("map_index", Integer, primary_key=True),
    Column("try_number", Integer, primary_key=True),
    Column("state", String(20), nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("hostname", String(250)),
    Column("pid", Integer),
    Column("error_type", String(250)),
    Column("error_message", Text),
    Column("log", Text),
    Column("log_truncated", Boolean, nullable=False, default=False),
)

worker = Table(
    "worker",
    metadata,
    Column("worker_id", String(100), primary_key=True),
    Column("hostname", String(250), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("state", String(20), nullable=False),  # running / stopping / stopped
)

pool = Table(
    "pool",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("slots", Integer, nullable=False),
    Column("description", Text),
)

dag = Table(
    "dag",
    metadata,
    Column("dag_id", String(250), primary_key=True),
    Column("fileloc", Text, nullable=False),
    Column("schedule", String(250)),
    Column("snapshot", Text, nullable=False),  # its frozen structure, JSON: what its scheduled runs are made from
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("parsed_at", UTCDateTime, nullable=False),
)

dag_file = Table(
    "dag_file",
    metadata,
    Column("fileloc", String(1000), primary_key=True),
    Column("parsed_at", UTCDateTime, nullable=False),
    Column("error", Text),  # why the file did not load at its last change; NULL when it loaded
)
