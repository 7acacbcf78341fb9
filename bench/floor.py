"""The floor: the database work of a fan-out without the engine.

Insert N rows, then `processes` plain loops each claim batches with SKIP LOCKED (SQLite: its writer lock)
and record every completion in its own committed transaction. Raw drivers, no SQLAlchemy, no minimap.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from typing import Any

import psycopg

BATCH = 32


def _pg_worker(dsn: str, table: str) -> None:
    with psycopg.connect(dsn) as conn:
        while True:
            with conn.transaction():
                rows = conn.execute(
                    f"UPDATE {table} SET state = 'running' WHERE id IN (SELECT id FROM {table} WHERE state = 'queued'"
                    f" ORDER BY id LIMIT {BATCH} FOR UPDATE SKIP LOCKED) RETURNING id"
                ).fetchall()
            if not rows:
                return
            for (row_id,) in rows:
                with conn.transaction():
                    conn.execute(
                        f"UPDATE {table} SET state = 'success', result = %s WHERE id = %s", (str(row_id), row_id)
                    )


def _sqlite_worker(path: str, table: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    while True:
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(
            f"UPDATE {table} SET state = 'running' WHERE id IN (SELECT id FROM {table} WHERE state = 'queued'"
            f" ORDER BY id LIMIT {BATCH}) RETURNING id"
        ).fetchall()
        conn.execute("COMMIT")
        if not rows:
            return
        for (row_id,) in rows:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"UPDATE {table} SET state = 'success', result = ? WHERE id = ?", (str(row_id), row_id))
            conn.execute("COMMIT")


def floor(url: str, n: int, processes: int = 1) -> dict[str, Any]:
    """Seconds to insert, and instances per second through claim + per-completion commits."""
    table = "floor_bench"
    ddl = (
        f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id INTEGER PRIMARY KEY, state TEXT NOT NULL, result TEXT)"
    )
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[1]
        conn = sqlite3.connect(path, isolation_level=None)
        conn.executescript(ddl + f"; CREATE INDEX {table}_state ON {table} (state, id)")
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO {table} VALUES (?, 'queued', NULL)", ((i,) for i in range(n)))
        conn.execute("COMMIT")
        target, args = _sqlite_worker, (path, table)
    else:
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            for stmt in ddl.split("; "):
                conn.execute(stmt)
            conn.execute(f"CREATE INDEX {table}_state ON {table} (state, id)")
            t0 = time.perf_counter()
            with conn.cursor().copy(f"COPY {table} (id, state) FROM STDIN") as copy:
                for i in range(n):
                    copy.write_row((i, "queued"))
        target, args = _pg_worker, (dsn, table)
    inserted = time.perf_counter() - t0
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=target, args=args) for _ in range(processes)]
    t1 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    span = time.perf_counter() - t1
    return {"insert_s": inserted, "span_s": span, "per_s": n / span}


if __name__ == "__main__":
    import sys

    print(floor(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1))
