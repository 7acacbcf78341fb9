"""What time it is for schedules: the wall clock, or MINIMAP_FAKE_NOW (an ISO datetime) so tests set "now"."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from minimap.exceptions import ConfigError


def now() -> datetime:
    """The current time, aware UTC; MINIMAP_FAKE_NOW (naive = UTC) replaces it when set."""
    fake = os.environ.get("MINIMAP_FAKE_NOW", "").strip()
    if not fake:
        return datetime.now(timezone.utc)
    try:
        value = datetime.fromisoformat(fake)
    except ValueError:
        raise ConfigError(f"bad environment variable: MINIMAP_FAKE_NOW={fake!r} is not an ISO datetime") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
