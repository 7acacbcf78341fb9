"""Waiting out a database that went away: exponential backoff, and one log line per outage."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class Backoff:
    """Tracks one dependency's failures: when to try again, and whether it has come back."""

    def __init__(self, what: str, first: float = 0.1, most: float = 5.0) -> None:
        self.what = what
        self.first = first
        self.most = most
        self.delay = 0.0
        self.retry_at = 0.0
        self.down_since: float | None = None

    @property
    def ready(self) -> bool:
        """Whether it is time to try again."""
        return time.monotonic() >= self.retry_at

    def failed(self, error: Exception) -> None:
        self.delay = min(self.most, self.delay * 2 if self.delay else self.first)
        self.retry_at = time.monotonic() + self.delay
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("%s: %s; retrying with backoff", self.what, error)
        else:
            log.debug("%s still failing: %s (next try in %.1fs)", self.what, error, self.delay)

    def succeeded(self) -> bool:
        """Record a success; True if this ends an outage."""
        self.delay, self.retry_at = 0.0, 0.0
        if self.down_since is None:
            return False
        log.warning("%s: back after %.1fs", self.what, time.monotonic() - self.down_since)
        self.down_since = None
        return True
