"""Postgres housekeeping of task_instance after heavy churn: vacuum and analyze (SQLite needs neither)."""

from __future__ import annotations

from sqlalchemy import Connection, text

# VACUUM: clears the dead row versions claims and completions leave behind; blocks neither reads nor writes.
# Runs outside a transaction (AUTOCOMMIT connection).
VACUUM = text("VACUUM task_instance")

# ANALYZE: refreshes the planner's statistics of task_instance; takes no lock that blocks reads or writes.
ANALYZE = text("ANALYZE task_instance")


def vacuum(autocommit_conn: Connection) -> None:
    """Every state change leaves the old version's index entries behind; until they are vacuumed, each claim
    steps over all of them (measured: 1 ms per claim at the start of a 30,000-instance run, 8 ms at its
    end). Autovacuum comes a minute or more later."""
    autocommit_conn.execute(VACUUM)


def analyze(conn: Connection) -> None:
    """A table that grew from nothing within seconds has no statistics yet (autovacuum analyzes only after a minute
    or so); without them Postgres scans `state` with bitmap scans, which walk every dead index entry that claims
    leave behind, while plain index scans mark those entries dead once and skip them afterwards."""
    conn.execute(ANALYZE)
