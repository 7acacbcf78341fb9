"""Clearing from the page: a GET shows exactly what would be reset (the plan `minimap clear --dry-run` prints)
and the equivalent command; the confirm button POSTs the same request, which resets that plan only."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from minimap import service
from minimap.exceptions import ClearError, MinimapError
from minimap.service import operations
from minimap.service.operations import ClearPlan, ClearTarget
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

    def targets(self, store: Store) -> list[ClearTarget]:
        return operations.clear_targets(store, self.run_id, self.task_id, self.map_indexes)

    def preview(self, store: Store) -> ClearPlan:
        """What this clear would reset now: the plan `minimap clear --dry-run` prints, read without a lock."""
        targets = self.targets(store)
        wanted = [(t, None) if isinstance(t, str) else t for t in targets]
        found = service.preview_clear(store, self.run_id, wanted, self.states or None, self.downstream_all)
        spec = store.spec(self.run_id)
        command = operations.clear_command(spec, self.run_id, targets, self.states, self.downstream_all)
        return ClearPlan(self.run_id, tuple(targets), tuple(self.states), self.downstream_all, tuple(found), command)


def command(plan: ClearPlan) -> str:
    """The `minimap clear` command doing what the page does: reset and return (--no-wait), the scheduler and
    workers carrying the run on; --yes when instances that succeeded run again (the preview was the question)."""
    return plan.command + " --no-wait" + (" --yes" if plan.succeeded else "")


def digest(plan: ClearPlan) -> str:
    """A fingerprint of a plan, so a confirm resets what its preview showed or nothing."""
    text = "\n".join(f"{i.task_id}\t{i.map_index}\t{i.state.value}" for i in plan.instances)
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
    ask = parse(run_id, task_id, _query(request))
    return _preview(request, run, ask, ask.preview(store))


def _preview(request: Request, run: RunRow, ask: ClearRequest, plan: ClearPlan, changed: bool = False) -> Response:
    """The plan as a page: its first SHOWN instances by name, the rest counted per task and state."""
    by_task = Counter((i.task_id, i.state.value) for i in plan.instances)
    return render(request, "clear.html", http_status=409 if changed else 200, run=run, task_id=ask.task_id, ask=ask,
                  plan=list(plan.instances), again=len(plan.succeeded), command=command(plan), shown=SHOWN,
                  by_task=sorted(by_task.items()), expect=digest(plan), changed=changed)  # fmt: skip


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
    plan = ask.preview(store)
    if digest(plan) != expect:
        return _preview(request, run, ask, plan, changed=True)
    done = operations.apply_clear(store, plan)  # planned again under the run's lock, and applied
    target = format.url("runs", ask.run_id, "tasks", ask.task_id, cleared=len(done.instances))
    return RedirectResponse(target, 303)
