"""The web application: routes, templates, and errors as pages (a 404 page, never a traceback)."""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from minimap.exceptions import DatabaseError, MinimapError, NotFoundError
from minimap.store.storage import Store
from minimap.ui import actions, jsonapi, views
from minimap.ui.render import render
from minimap.ui.security import Guard, Refused

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"


def _error(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status)
    return render(request, "error.html", http_status=status, status=status, message=message)


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(request, 404, str(exc))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "no such page" if exc.status_code == 404 else str(exc.detail)
    return _error(request, exc.status_code, message)


async def _bad(request: Request, exc: Exception) -> Response:
    return _error(request, 503 if isinstance(exc, DatabaseError) else 400, str(exc))


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return _error(request, exc.status, str(exc))


async def _internal(request: Request, exc: Exception) -> Response:
    # The message of an unexpected error may carry anything (a URL, a password): the log has it, the page not.
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    text = f"internal error ({type(exc).__name__}); the server's log has the details"
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": text}, 500)
    return HTMLResponse(f"<!doctype html><title>error</title><p>{text}</p>", 500)


def create_app(store: Store, token: str | None = None, allowed_hosts: frozenset[str] | None = None) -> Starlette:
    """The page over `store`. `token`: every request must carry it; `allowed_hosts`: the Host header's names."""
    run = "/runs/{run_id:path}"
    task = run + "/tasks/{task_id}"
    routes = [
        Route("/", views.runs_page),
        Route("/workers", views.workers_page),
        Route("/pools", views.pools_page),
        Route("/login", views.login_page, methods=["GET"]),
        Route("/login", views.login, methods=["POST"]),
        Route(task + "/clear", actions.preview, methods=["GET"]),
        Route(task + "/clear", actions.apply, methods=["POST"]),
        Route(task + "/{map_index}/tries/{try_number}/log", views.log_page),
        Route(task + "/{map_index}", views.instance_page),
        Route(task, views.task_page),
        Route(run + "/groups/{group_id}", views.lanes_page),
        Route(run, views.run_page),
        Route("/api/runs", jsonapi.runs),
        Route("/api/workers", jsonapi.workers),
        Route("/api/pools", jsonapi.pools),
        Route("/api" + task + "/instances", jsonapi.instances),
        Route("/api" + task + "/{map_index}/tries/{try_number}/log", jsonapi.log),
        Route("/api" + task + "/{map_index}", jsonapi.instance),
        Route("/api" + run + "/clear", jsonapi.clear, methods=["POST"]),
        Route("/api" + run, jsonapi.run),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=Guard(token, allowed_hosts))],
        exception_handlers={
            NotFoundError: _not_found,
            HTTPException: _http,
            MinimapError: _bad,
            Refused: _refused,
            Exception: _internal,
        },
    )
    app.state.store = store
    app.state.token = token
    return app
