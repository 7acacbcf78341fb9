"""Templates: one Jinja environment, autoescaping everything, with the formatting helpers as globals."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from minimap.ui import format

templates = Environment(
    loader=PackageLoader("minimap.ui", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(
    url=format.url,
    link=format.link,
    when=format.when,
    seconds=format.seconds,
    pretty=format.pretty,
    ordered=format.ordered,
    name=format.name,
    STATES=format.STATES,
)


def render(request: Request, template: str, *, http_status: int = 200, **context: Any) -> HTMLResponse:
    """A page (or, for htmx, a fragment) from its template; every value escaped unless marked safe."""
    page = templates.get_template(template).render(request=request, csrf=getattr(request.state, "csrf", ""), **context)
    return HTMLResponse(page, http_status)
