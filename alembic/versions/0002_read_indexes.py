"""indexes for the read side: per-task counts and sorted instance pages

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = ["run_id", "task_id", "state", "map_index", "started_at", "ended_at"]


def upgrade() -> None:
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.create_index("ix_task_instance_run_task_state_times", _COLUMNS, unique=False)
    with op.batch_alter_table("dag_run", schema=None) as batch_op:
        batch_op.create_index("ix_dag_run_dag_id_id", ["dag_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dag_run", schema=None) as batch_op:
        batch_op.drop_index("ix_dag_run_dag_id_id")
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.drop_index("ix_task_instance_run_task_state_times")
