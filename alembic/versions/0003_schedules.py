"""time schedules: run type, logical date and data interval on dag_run; the DAG registry (dag, dag_file)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from minimap.store.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Columns are added (ALTER TABLE ADD COLUMN on both backends, no table copy on SQLite) and the uniqueness is a
    # unique index, which SQLite creates in place: dag_run is never rebuilt, so its cascading keys are untouched.
    op.add_column("dag_run", sa.Column("run_type", sa.String(20), nullable=False, server_default="manual"))
    op.add_column("dag_run", sa.Column("logical_date", UTCDateTime(), nullable=True))
    op.add_column("dag_run", sa.Column("data_interval_start", UTCDateTime(), nullable=True))
    op.add_column("dag_run", sa.Column("data_interval_end", UTCDateTime(), nullable=True))
    op.create_index("ix_dag_run_dag_id_logical_date", "dag_run", ["dag_id", "logical_date"], unique=True)
    op.create_table(
        "dag",
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("fileloc", sa.Text(), nullable=False),
        sa.Column("schedule", sa.String(250), nullable=True),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("parsed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("dag_id", name=op.f("pk_dag")),
    )
    op.create_table(
        "dag_file",
        sa.Column("fileloc", sa.String(1000), nullable=False),
        sa.Column("parsed_at", UTCDateTime(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("fileloc", name=op.f("pk_dag_file")),
    )


def downgrade() -> None:
    op.drop_table("dag_file")
    op.drop_table("dag")
    op.drop_index("ix_dag_run_dag_id_logical_date", table_name="dag_run")
    with op.batch_alter_table("dag_run", schema=None) as batch_op:
        for column in ("data_interval_end", "data_interval_start", "logical_date", "run_type"):
            batch_op.drop_column(column)
