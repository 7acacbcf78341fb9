"""How values read on the page: links with run ids percent-encoded, times, durations, JSON, counts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from minimap.service.records import duration
from minimap.states import TIState

STATES = [s.value for s in TIState]


def url(*parts: Any, **query: Any) -> str:
    """`/a/b` from path parts, each percent-encoded whole (run ids hold ':', '+', '/'), then the query.

    A query value that is a list repeats its key; None and "" are left out.
    """
    return link("/" + "/".join(quote(str(p), safe="") for p in parts), **query)


def link(path: str, **query: Any) -> str:
    """`path` (already encoded) with a query string; list values repeat their key, None and "" are left out."""
    pairs = []
    for key, value in query.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None and v != "":
                pairs.append((key, str(v)))
    return path + ("?" + urlencode(pairs) if pairs else "")


def when(t: datetime | None) -> str:
    """A time in UTC to the second: 2026-12-02 07:36:47."""
    if t is None:
        return ""
    if t.tzinfo is not None:  # SQLite hands back naive UTC times, Postgres aware ones
        t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def seconds(start: datetime | None, end: datetime | None) -> str:
    """How long from `start` to `end`: 0.42 s, 12.3 s, 4 min 02 s; empty when not both known."""
    took = duration(start, end)
    if took is None:
        return ""
    if took < 10:
        return f"{took:.2f} s"
    return f"{took:.1f} s" if took < 60 else f"{int(took // 60)} min {took % 60:02.0f} s"


def pretty(value: Any) -> str:
    """A stored value as indented JSON."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def ordered(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """(state, n) for the states present, in the order of their definition."""
    return [(s, counts[s]) for s in STATES if counts.get(s)]


def name(task_id: str, map_index: int) -> str:
    return f"{task_id}[{map_index}]" if map_index >= 0 else task_id
