"""The pages: runs, one run's tasks, one mapped task's instances, one instance, a try's log, workers, login.

Each list page renders a template whose partial is also served alone as its htmx fragment (?part=...).
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from minimap import defaults, service
from minimap.service import lanes
from minimap.states import RunState
from minimap.ui import params
from minimap.ui.render import render
from minimap.ui.security import LOGIN_COOKIE, login_value, safe_next

RUNS_PAGE = 50
INSTANCES_PAGE = 100
LANES_PAGE = 100
LOG_TAIL = 8192  # characters of a log shown first; "load more" pages back from there
LIVE = (RunState.QUEUED, RunState.RUNNING)


def runs_page(request: Request) -> Response:
    """`/`: runs newest first with their per-state counts; filter by DAG and state; keyset paged."""
    q = request.query_params
    dag_id = q.get("dag_id") or None
    state = params.run_state(q.get("state"))
    page = service.list_runs(params.store(request), dag_id=dag_id, state=state, after=q.get("after") or None,
                             limit=RUNS_PAGE)  # fmt: skip
    return render(request, "runs.html", page=page, dag_id=dag_id or "", state=state.value if state else "",
                   paged=bool(q.get("after")), run_states=[s.value for s in RunState])  # fmt: skip


def run_page(request: Request) -> Response:
    """A run: one row per task with its per-state counts; ?part=tasks is the fragment that refreshes."""
    store = params.store(request)
    detail = service.run_detail(store, request.path_params["run_id"])
    template = "_run_tasks.html" if request.query_params.get("part") == "tasks" else "run.html"
    groups = lanes.mapped_groups(store, detail.run.run_id)
    return render(request, template, detail=detail, run=detail.run, live=detail.run.state in LIVE, groups=groups)


def lanes_page(request: Request) -> Response:
    """A mapped task group's lane matrix: one row per lane (map index), one state per step; 100 lanes a page."""
    store = params.store(request)
    run_id, group_id = request.path_params["run_id"], request.path_params["group_id"]
    run = service.get_run(store, run_id)
    after = params.optional_int(request, "after")
    after = -1 if after is None or after < -1 else after
    matrix = lanes.lane_matrix(store, run_id, group_id, after=after, limit=LANES_PAGE)
    whole = lanes.lane_counts(store, run_id, group_id)
    more = bool(matrix.lanes) and matrix.lanes[-1].map_index < whole.total - 1
    return render(request, "lanes.html", run=run, m=matrix, whole=whole, after=after, more=more,
                  next_after=after + LANES_PAGE, live=run.state in LIVE)  # fmt: skip


def task_page(request: Request) -> Response:
    """One task's instances: counts as filters, label search, sort, keyset pages of 100, clear actions."""
    store = params.store(request)
    run_id, task_id = request.path_params["run_id"], request.path_params["task_id"]
    run = service.get_run(store, run_id)
    summary = service.task_summary(store, run_id, task_id)
    q = request.query_params
    part = q.get("part")
    context: dict[str, Any] = dict(
        run=run, task=summary, live=run.state in LIVE, filters=[s.value for s in params.states(request)],
        q=q.get("q", ""), sort=q.get("sort") or "index", cleared=params.optional_int(request, "cleared"),
    )  # fmt: skip
    if part == "counts":
        return render(request, "_task_counts.html", **context)
    page = service.list_instances(store, run_id, task_id, states=params.states(request) or None,
                                  q=q.get("q") or None, sort=str(context["sort"]), after=q.get("after") or None,
                                  limit=INSTANCES_PAGE)  # fmt: skip
    picked = {int(v) for v in q.getlist("map_index") if v.lstrip("-").isdigit()}  # ticked boxes, kept on refresh
    context.update(page=page, paged=bool(q.get("after")), sorts=params.INSTANCE_SORTS, picked=picked)
    if part == "rows":
        return render(request, "_instances.html", **context)
    context["live_workers"] = _live_workers(request) if context["cleared"] else None
    return render(request, "task.html", **context)


def instance_page(request: Request) -> Response:
    """One instance: every try with its log tail, error, arguments, result, idempotency key, why it waits."""
    store = params.store(request)
    run_id, task_id = request.path_params["run_id"], request.path_params["task_id"]
    map_index = params.path_int(request, "map_index", "map index")
    run = service.get_run(store, run_id)
    detail = service.instance_detail(store, run_id, task_id, map_index)
    logs = {t.try_number: service.try_log(store, run_id, task_id, map_index, t.try_number, size=LOG_TAIL)
            for t in detail.tries}  # fmt: skip
    return render(request, "instance.html", run=run, d=detail, i=detail.instance, logs=logs)


def log_page(request: Request) -> Response:
    """An earlier window of a try's log: the htmx fragment behind "load more", or a page without JavaScript."""
    store = params.store(request)
    run_id, task_id = request.path_params["run_id"], request.path_params["task_id"]
    map_index = params.path_int(request, "map_index", "map index")
    try_number = params.path_int(request, "try_number", "try")
    before = params.optional_int(request, "before")
    chunk = service.try_log(store, run_id, task_id, map_index, try_number, before=before, size=LOG_TAIL)
    context = dict(run_id=run_id, task_id=task_id, map_index=map_index, try_number=try_number, chunk=chunk)
    if request.headers.get("hx-request"):
        return render(request, "_log_chunk.html", **context)
    return render(request, "log.html", **context)


def workers_page(request: Request) -> Response:
    """Registered workers: host, heartbeat, what each runs now."""
    now = datetime.now(timezone.utc)
    found = service.list_workers(params.store(request))
    ages = {w.worker_id: (now - _aware(w.heartbeat_at)).total_seconds() for w in found}
    return render(request, "workers.html", workers=found, ages=ages, lease=defaults.LEASE_TIMEOUT)


def pools_page(request: Request) -> Response:
    """Pools: each one's slots, the slots running instances take and what queued ones wait for."""
    return render(request, "pools.html", pools=service.list_pools(params.store(request)))


def login_page(request: Request) -> Response:
    return render(request, "login.html", next=safe_next(request.query_params.get("next")), wrong=False)


async def login(request: Request) -> Response:
    """The token typed into the login form, checked; right: a cookie that stands for it."""
    from urllib.parse import parse_qs

    token: str | None = request.app.state.token
    form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
    given = (form.get("token") or [""])[0]
    target = safe_next((form.get("next") or [""])[0])
    if token is None:
        return RedirectResponse(target, 303)
    if not hmac.compare_digest(given.encode(), token.encode()):
        return render(request, "login.html", http_status=401, next=target, wrong=True)
    response = RedirectResponse(target, 303)
    response.set_cookie(LOGIN_COOKIE, login_value(token), httponly=True, samesite="strict")
    return response


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def _live_workers(request: Request) -> int:
    since = datetime.now(timezone.utc) - timedelta(seconds=defaults.LEASE_TIMEOUT)
    return sum(1 for w in service.list_workers(params.store(request)) if _aware(w.heartbeat_at) >= since)
