"""pools: the pool table (with default_pool, 128 slots as in Airflow) and each instance's pool, slots and weight

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

_PRIORITY_INDEX = "ix_task_instance_queued_priority"


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
        batch_op.create_index(
            _PRIORITY_INDEX,
            [sa.literal_column("priority_weight").desc(), "run_id", "task_id", "map_index"],
            unique=False,
            postgresql_where=sa.text("state = 'queued'"),
            sqlite_where=sa.text("state = 'queued'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.drop_index(_PRIORITY_INDEX)
        batch_op.drop_column("priority_weight")
        batch_op.drop_column("pool_slots")
        batch_op.drop_column("pool")
    op.drop_table("pool")
