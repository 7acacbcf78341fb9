"""Page cursors: opaque to callers, checked when they come back (a bad one is one clear error, not a wrong page)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

from minimap.exceptions import MinimapError
from minimap.store.reads import Keyset


class CursorError(MinimapError):
    """This page cursor is not one minimap handed out (start from the first page)."""


def encode(*parts: Any) -> str:
    raw = json.dumps(list(parts), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, kind: str) -> list[Any]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise CursorError() from None
    if not isinstance(parts, list) or not parts or parts[0] != kind:
        raise CursorError()
    return parts[1:]


def plain(value: Any) -> Any:
    """A sort value as JSON, exactly: datetimes as ISO text, intervals in microseconds, seconds as float."""
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, timedelta):
        return {"us": value // timedelta(microseconds=1)}
    return None if value is None else float(value)


def keyset(cursor: str, sort: str) -> Keyset:
    parts = decode(cursor, "i")
    if len(parts) != 3 or parts[0] != sort or not isinstance(parts[2], int):
        raise CursorError()
    raw = parts[1]
    value: float | datetime | timedelta | None = None
    try:
        if isinstance(raw, dict) and set(raw) == {"t"}:
            value = datetime.fromisoformat(raw["t"])
        elif isinstance(raw, dict) and set(raw) == {"us"}:
            value = timedelta(microseconds=int(raw["us"]))
        elif isinstance(raw, (int, float)):
            value = float(raw)
        elif raw is not None:
            raise CursorError()
    except (TypeError, ValueError, OverflowError):
        raise CursorError() from None
    return Keyset(value, parts[2])
