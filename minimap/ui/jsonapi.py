"""The JSON API under /api/: what the pages show, in the shapes `minimap ... --json` prints.

Lists are {"items": [...], "next_after": cursor or null}; errors are {"error": "one line"} with a 4xx status.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from minimap import service
from minimap.exceptions import MinimapError
from minimap.rules.clearing import Instance
from minimap.service import operations
from minimap.service.records import iso
from minimap.ui import params
from minimap.ui.security import Refused
from minimap.ui.views import INSTANCES_PAGE, RUNS_PAGE


def runs(request: Request) -> Response:
    """GET /api/runs?dag_id=&state=&after=&limit="""
    q = request.query_params
    page = service.list_runs(params.store(request), dag_id=q.get("dag_id") or None,
                             state=params.run_state(q.get("state")), after=q.get("after") or None,
                             limit=params.limit(request, RUNS_PAGE))  # fmt: skip
    return JSONResponse({"items": [service.run_json(s) for s in page.items], "next_after": page.next_after})


def run(request: Request) -> Response:
    """GET /api/runs/{run_id}: the run and each task's per-state counts."""
    detail = service.run_detail(params.store(request), request.path_params["run_id"])
    return JSONResponse({**service.run_json(detail.run), "tasks": [service.task_json(t) for t in detail.tasks]})


def instances(request: Request) -> Response:
    """GET /api/runs/{run_id}/tasks/{task_id}/instances?state=&q=&sort=&after=&limit="""
    q = request.query_params
    page = service.list_instances(params.store(request), request.path_params["run_id"],
                                  request.path_params["task_id"], states=params.states(request) or None,
                                  q=q.get("q") or None, sort=q.get("sort") or "index", after=q.get("after") or None,
                                  limit=params.limit(request, INSTANCES_PAGE))  # fmt: skip
    return JSONResponse({"items": [service.instance_json(i) for i in page.items], "next_after": page.next_after})


def instance(request: Request) -> Response:
    """GET /api/runs/{run_id}/tasks/{task_id}/{map_index}: the instance with its tries, args, key, why it waits."""
    map_index = params.path_int(request, "map_index", "map index")
    d = service.instance_detail(params.store(request), request.path_params["run_id"],
                                request.path_params["task_id"], map_index)  # fmt: skip
    out = service.instance_json(d.instance, d.tries)
    out.update(args=d.args, idempotency_key=d.idempotency_key, waiting_reason=d.waiting_reason,
               worker_id=d.worker_id, next_retry_at=iso(d.next_retry_at), queued_at=iso(d.queued_at))  # fmt: skip
    return JSONResponse(out)


def log(request: Request) -> Response:
    """GET .../{map_index}/tries/{n}/log?before=&size=: a window of the log, ending at `before` (default: the end)."""
    map_index = params.path_int(request, "map_index", "map index")
    try_number = params.path_int(request, "try_number", "try")
    chunk = service.try_log(params.store(request), request.path_params["run_id"], request.path_params["task_id"],
                            map_index, try_number, before=params.optional_int(request, "before"),
                            size=params.optional_int(request, "size") or 16384)  # fmt: skip
    return JSONResponse({"text": chunk.text, "start": chunk.start, "total": chunk.total, "truncated": chunk.truncated})


def workers(request: Request) -> Response:
    """GET /api/workers"""
    return JSONResponse([
        {"worker_id": w.worker_id, "hostname": w.hostname, "pid": w.pid, "state": w.state,
         "started_at": iso(w.started_at), "heartbeat_at": iso(w.heartbeat_at),
         "running": [{"run_id": r, "task_id": t, "map_index": m} for r, t, m in w.running]}
        for w in service.list_workers(params.store(request))
    ])  # fmt: skip


def pools(request: Request) -> Response:
    """GET /api/pools: the shape of `minimap pools list --json`."""
    return JSONResponse([p.__dict__ for p in service.list_pools(params.store(request))])


async def clear(request: Request) -> Response:
    """POST /api/runs/{run_id}/clear {task, map_indexes, states, downstream_all, dry_run}: the plan, and what
    was reset. Takes what `minimap clear` takes; application/json only (see minimap.ui.security)."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise Refused(415, "send the clear as application/json")
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise MinimapError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise MinimapError('the body must be a JSON object like {"task": "send", "states": ["failed"]}')
    return await run_in_threadpool(_clear, request, body)


def _clear(request: Request, body: dict[str, Any]) -> Response:
    store = params.store(request)
    run_id = service.get_run(store, request.path_params["run_id"]).run_id
    task_id = body.get("task")
    indexes = body.get("map_indexes") or []
    raw_states = body.get("states") or ([body["state"]] if body.get("state") else [])
    if task_id is not None and not isinstance(task_id, str):
        raise MinimapError("task must be a task id (a string)")
    if not isinstance(indexes, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in indexes):
        raise MinimapError("map_indexes must be a list of whole numbers")
    if not isinstance(raw_states, list) or not all(isinstance(s, str) for s in raw_states):
        raise MinimapError("states must be a list of state names")
    states = [params.ti_state(s) for s in raw_states]
    targets = operations.select_targets(store, run_id, task_id, indexes, states)
    plan = operations.plan_clear(store, run_id, targets, states or None, bool(body.get("downstream_all", False)))
    dry_run = bool(body.get("dry_run", False))
    done = plan if dry_run else operations.apply_clear(store, plan)  # planned again under the run's lock
    return JSONResponse({
        "run_id": run_id, "dry_run": dry_run, "plan": [_planned(i) for i in plan.instances],
        "reset": [] if dry_run else [_planned(i) for i in done.instances], "command": plan.command,
    })  # fmt: skip


def _planned(i: Instance) -> dict[str, Any]:
    return {"task_id": i.task_id, "map_index": i.map_index, "state": i.state.value}
