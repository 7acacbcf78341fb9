"""scale: partial indexes on the states claims look up; autovacuum settings for the hot tables (Postgres)

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-02 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

_PARTIAL = (("queued", "queued"), ("running", "running"), ("retrying", "up_for_retry"))

# task_instance: every claim and completion leaves a dead row version; vacuum after 2 % (not 20 %) of the table
# changed, and without the cost delay, so a table of 10 million finished instances does not wait for 2 million
# dead ones. task_try only grows: vacuum (for the visibility map) and analyze after 5 % of it was inserted.
_AUTOVACUUM = {
    "task_instance": "autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000, "
    "autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000, "
    "autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0",
    "task_try": "autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05",
}


def upgrade() -> None:
    for name, state in _PARTIAL:
        op.create_index(
            f"ix_task_instance_{name}",
            "task_instance",
            ["run_id", "task_id", "map_index"],
            postgresql_where=sa.text(f"state = '{state}'"),
            sqlite_where=sa.text(f"state = '{state}'"),
        )
    if op.get_bind().dialect.name == "postgresql":
        for table, settings in _AUTOVACUUM.items():
            op.execute(f"ALTER TABLE {table} SET ({settings})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, settings in _AUTOVACUUM.items():
            names = ", ".join(s.split("=")[0].strip() for s in settings.split(","))
            op.execute(f"ALTER TABLE {table} RESET ({names})")
    for name, _ in reversed(_PARTIAL):
        op.drop_index(f"ix_task_instance_{name}", table_name="task_instance")
