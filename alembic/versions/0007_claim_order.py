"""claim order: a partial index of the queued instances in the one-run claim's order (run, priority, task, index)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 11:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# With 10 million finished instances in task_instance, the planner estimates one queued instance for a new run
# (its run_id is in no statistics) and read the claim's queued branch through ix_task_instance_queued (run, task,
# index) and a sort: every claim read all of the run's queued instances (10 ms at 10,000 queued; 0.2 ms with this).
# This index is as small (queued only) and already in the claim's order, so the plan reads `limit` entries whatever
# the estimate. ix_task_instance_queued stays: it answers "a task's first queued index" (instances.live_counts).


def upgrade() -> None:
    op.create_index(
        "ix_task_instance_queued_claim",
        "task_instance",
        ["run_id", sa.literal_column("priority_weight").desc(), "task_id", "map_index"],
        postgresql_where=sa.text("state = 'queued'"),
        sqlite_where=sa.text("state = 'queued'"),
    )


def downgrade() -> None:
    op.drop_index("ix_task_instance_queued_claim", table_name="task_instance")
