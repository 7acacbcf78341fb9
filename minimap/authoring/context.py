"""`get_current_context()`: what a running task knows about itself."""

from __future__ import annotations

import contextvars
import hashlib
from typing import Any

from minimap.exceptions import MinimapError

_current: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("minimap_context")


def idempotency_key(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The same for every try and clear of one instance, different for every other instance."""
    raw = f"{dag_id}\x1f{run_id}\x1f{task_id}\x1f{map_index}"
    return f"{dag_id}.{task_id}.{map_index}." + hashlib.sha256(raw.encode()).hexdigest()[:24]


def get_current_context() -> dict[str, Any]:
    """The running task's context: dag_id, run_id, task_id, map_index, try_number, params, conf..."""
    try:
        return _current.get()
    except LookupError:
        raise MinimapError("get_current_context() works only inside a running task") from None


def set_context(context: dict[str, Any]) -> contextvars.Token[dict[str, Any]]:
    """Make `context` the current one (the worker does this around each attempt)."""
    return _current.set(context)


def reset_context(token: contextvars.Token[dict[str, Any]]) -> None:
    _current.reset(token)
