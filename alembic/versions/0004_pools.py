"""pools: the pool table (with default_pool, 128 slots as in Airflow), each instance's pool, slots and weight, and
the claim's indexes in priority order

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_OLD = ("ix_task_instance_state_run_id_task_id_map_index", ["state", "run_id", "task_id", "map_index"])


def _weight() -> sa.ColumnElement[int]:
    return sa.literal_column("priority_weight").desc()


def upgrade() -> None:
    pool = op.create_table(
        "pool",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pool")),
    )
    op.bulk_insert(pool, [{"name": "default_pool", "slots": 128, "description": "Default pool"}])
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pool", sa.String(length=256), server_default="default_pool", nullable=False))
        batch_op.add_column(sa.Column("pool_slots", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("priority_weight", sa.Integer(), server_default="1", nullable=False))
        batch_op.drop_index(_OLD[0])
        batch_op.create_index(
            "ix_task_instance_state_priority", ["state", _weight(), "run_id", "task_id", "map_index"], unique=False
        )
        batch_op.create_index(
            "ix_task_instance_state_run_priority", ["state", "run_id", _weight(), "task_id", "map_index"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.drop_index("ix_task_instance_state_run_priority")
        batch_op.drop_index("ix_task_instance_state_priority")
        batch_op.create_index(_OLD[0], _OLD[1], unique=False)
        batch_op.drop_column("priority_weight")
        batch_op.drop_column("pool_slots")
        batch_op.drop_column("pool")
    op.drop_table("pool")
