"""Wake-ups between daemons on Postgres: LISTEN/NOTIFY instead of waiting out a poll interval.

A scheduler pass that queued work notifies WORK (daemon workers claim at once); a worker that recorded ends and
found nothing left to claim notifies SCHEDULE (schedulers run a pass at once). Each notification is sent inside
the transaction that commits the batch, so it arrives only if the batch committed, and it is one per batch, never
one per instance (a NOTIFY takes a server-wide lock at commit: pgqueuer's users' pain at high rates).

Each process listens on one connection of its own (autocommit). Notifications are hints, never the only way work
is found: the loops still poll every MINIMAP_POLL_INTERVAL, so a notification that is lost (a dropped listening
connection, a restart) delays work by one poll interval at most. A lost listening connection is reopened at the
next wait. SQLite has no notifications: its listener only sleeps.
"""

from __future__ import annotations

import logging
import os
import select
import time
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

WORK = "minimap_work"  # new instances are queued: claim
SCHEDULE = "minimap_schedule"  # instances ended and the queue ran dry: schedule
NOTIFY = text("SELECT pg_notify(:channel, '')")
APPLICATION = "minimap listen"  # the listening connection's application_name (pg_stat_activity)


def enabled() -> bool:
    """MINIMAP_NOTIFY=0 turns notifications off (the loops then find work by polling alone)."""
    return os.environ.get("MINIMAP_NOTIFY", "1") != "0"


def notify(conn: Connection, channel: str) -> None:
    """Notify `channel` when the caller's transaction commits (Postgres; nothing on SQLite)."""
    if conn.dialect.name == "postgresql" and enabled():
        conn.execute(NOTIFY, {"channel": channel})


class Listener:
    """One LISTEN connection; `wait(timeout)` returns early when a notification arrives."""

    def __init__(self, engine: Engine, channel: str) -> None:
        self.channel = channel
        self.url = engine.url
        self.postgres = engine.dialect.name == "postgresql" and enabled()
        self.conn: Any = None
        self.retry_at = 0.0

    def fileno(self) -> int:
        """The listening socket, for select()/multiprocessing.connection.wait (-1: none; poll instead)."""
        conn = self._connection()
        return conn.fileno() if conn is not None else -1

    def _connection(self) -> Any:
        if not self.postgres or self.conn is not None or time.monotonic() < self.retry_at:
            return self.conn
        import psycopg

        try:
            params = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self.conn = psycopg.connect(params, autocommit=True, application_name=APPLICATION, connect_timeout=5)
            self.conn.execute(f"LISTEN {self.channel}")
        except psycopg.Error as e:
            log.info("listening for %s failed (%s): polling until it works again", self.channel, e)
            self._lost()
        return self.conn

    def _lost(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 -- closing a broken connection may fail in any way
                pass
        self.conn = None
        self.retry_at = time.monotonic() + 1.0

    def drain(self) -> bool:
        """Consume the notifications that arrived; whether there were any."""
        if self.conn is None:
            return False
        import psycopg

        try:
            return any(True for _ in self.conn.notifies(timeout=0))
        except psycopg.Error:
            log.info("the connection listening for %s was lost: polling until it is back", self.channel)
            self._lost()
            return False

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` s, less if a notification arrives; whether one did."""
        fd = self.fileno()
        if fd < 0:
            time.sleep(timeout)
            return False
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
        except (OSError, ValueError):
            self._lost()
            return False
        return self.drain() if ready else False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
