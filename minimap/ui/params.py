"""Reading a request's path and query into typed values; a value that cannot be read is a clear error."""

from __future__ import annotations

from starlette.requests import Request

from minimap.exceptions import MinimapError, NotFoundError
from minimap.states import RunState, TIState
from minimap.store.storage import Store

INSTANCE_SORTS = ("index", "-index", "duration", "-duration", "end", "-end")


def store(request: Request) -> Store:
    s: Store = request.app.state.store
    return s


def path_int(request: Request, key: str, what: str) -> int:
    raw = request.path_params[key]
    try:
        return int(raw)
    except ValueError:
        raise NotFoundError(f"no {what} {raw!r}: it must be a whole number") from None


def states(request: Request, key: str = "state") -> list[TIState]:
    """?state=failed&state=up_for_retry as states; an unknown one is an error naming the known ones."""
    out = []
    for raw in request.query_params.getlist(key):
        if raw:
            out.append(ti_state(raw))
    return out


def ti_state(raw: str) -> TIState:
    try:
        return TIState(raw)
    except ValueError:
        raise MinimapError(f"unknown state {raw!r}: use one of {', '.join(s.value for s in TIState)}") from None


def run_state(raw: str | None) -> RunState | None:
    if not raw:
        return None
    try:
        return RunState(raw)
    except ValueError:
        raise MinimapError(f"unknown run state {raw!r}: use one of {', '.join(s.value for s in RunState)}") from None


def limit(request: Request, default: int) -> int:
    raw = request.query_params.get("limit")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise MinimapError(f"limit must be a whole number, not {raw!r}") from None


def optional_int(request: Request, key: str) -> int | None:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise MinimapError(f"{key} must be a whole number, not {raw!r}") from None
