"""Clearing from the page: a GET shows exactly what would be reset (the plan `minimap clear --dry-run` prints)
and the equivalent command; the confirm button POSTs the same request, which resets that plan only."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from minimap import api, service
from minimap.exceptions import ClearError, MinimapError
from minimap.rules.clearing import Instance
from minimap.states import TIState
from minimap.store.rows import RunRow
from minimap.store.storage import Store
from minimap.ui import format, params
from minimap.ui.render import render
from minimap.ui.security import read_form

SHOWN = 100  # instances a preview names one by one; the rest are counted


@dataclass(frozen=True)
class ClearRequest:
    """What to clear in one task of one run: some map indexes, or those of its instances in some states."""

    run_id: str
    task_id: str
    map_indexes: list[int]
    states: list[TIState]
    downstream_all: bool = False

    def plan(self, store: Store, dry_run: bool = True) -> list[Instance]:
        """The instances this clear resets (with `dry_run`, would reset): the same plan as `minimap clear`.

        The preview reads without a lock; the clear itself plans again under the run's lock and resets that.
        """
        targets = api.clear_targets(store, self.run_id, self.task_id, self.map_indexes)
        if dry_run:
            wanted = [(t, None) if isinstance(t, str) else t for t in targets]
            return service.preview_clear(store, self.run_id, wanted, self.states or None, self.downstream_all)
        return api.clear(store, self.run_id, targets, self.states or None, self.downstream_all)

    def command(self, plan: Sequence[Instance]) -> str:
        """The equivalent `minimap clear` command line."""
        reruns = any(i.state is TIState.SUCCESS for i in plan)
        states = [s.value for s in self.states]
        return format.clear_command(self.run_id, self.task_id, self.map_indexes, states, self.downstream_all, reruns)


def digest(plan: Sequence[Instance]) -> str:
    """A fingerprint of a plan, so a confirm resets what its preview showed or nothing."""
    text = "\n".join(f"{i.task_id}\t{i.map_index}\t{i.state.value}" for i in plan)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def parse(run_id: str, task_id: str, values: dict[str, list[str]]) -> ClearRequest:
    """The clear asked for by a query string or a form (map_index=3&map_index=7, state=failed)."""
    indexes = []
    for raw in values.get("map_index", []):
        try:
            indexes.append(int(raw))
        except ValueError:
            raise MinimapError(f"map index must be a whole number, not {raw!r}") from None
    states = [params.ti_state(s) for s in values.get("state", []) if s]
    if not indexes and not states:
        raise ClearError("nothing selected to clear: tick the instances to clear first")
    downstream_all = (values.get("downstream_all") or [""])[0] in ("1", "on", "true")
    return ClearRequest(run_id, task_id, sorted(set(indexes)), states, downstream_all)


def _query(request: Request) -> dict[str, list[str]]:
    q = request.query_params
    return {k: q.getlist(k) for k in q}


def preview(request: Request) -> Response:
    """GET: what the clear would reset, the command that does the same, and a confirm button."""
    store = params.store(request)
    run_id, task_id = request.path_params["run_id"], request.path_params["task_id"]
    run = service.get_run(store, run_id)
    service.task_summary(store, run_id, task_id)  # an unknown task is a 404, before anything else
    ask = parse(run_id, task_id, _query(request))
    return _preview(request, run, ask, ask.plan(store))


def _preview(request: Request, run: RunRow, ask: ClearRequest, plan: list[Instance], changed: bool = False) -> Response:
    """The plan as a page: its first SHOWN instances by name, the rest counted per task and state."""
    by_task = Counter((i.task_id, i.state.value) for i in plan)
    return render(request, "clear.html", http_status=409 if changed else 200, run=run, task_id=ask.task_id, ask=ask,
                  plan=plan, shown=SHOWN, by_task=sorted(by_task.items()), expect=digest(plan),
                  changed=changed)  # fmt: skip


async def apply(request: Request) -> Response:
    """POST (CSRF-checked): reset the plan the preview showed; if it changed meanwhile, show the new one."""
    form = await read_form(request)
    run_id, task_id = request.path_params["run_id"], request.path_params["task_id"]
    ask = parse(run_id, task_id, form)
    expect = (form.get("expect") or [""])[0]
    return await run_in_threadpool(_apply, request, ask, expect)


def _apply(request: Request, ask: ClearRequest, expect: str) -> Response:
    store = params.store(request)
    run = service.get_run(store, ask.run_id)
    plan = ask.plan(store)
    if digest(plan) != expect:
        return _preview(request, run, ask, plan, changed=True)
    reset = ask.plan(store, dry_run=False)
    target = format.url("runs", ask.run_id, "tasks", ask.task_id, cleared=len(reset))
    return RedirectResponse(target, 303)
