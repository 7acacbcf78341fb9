"""What keeps the page safe: the access token off localhost, CSRF on every POST, the Host header on localhost.

- Bound to 127.0.0.1 (the default) no token is needed, but the Host header must name a loopback host, so a
  page elsewhere cannot reach this one through DNS rebinding.
- Bound to any other address, `minimap ui` refuses to start without MINIMAP_UI_TOKEN; then every request but
  the login form carries it: `Authorization: Bearer T`, `X-Minimap-Token: T`, or the cookie /login sets.
- Every POST is refused when it comes from another site (Origin / Sec-Fetch-Site). A form POST must also
  carry the CSRF cookie's value in its `csrf` field (double submit); a JSON POST must be application/json,
  which no other site can send without a CORS preflight this server never grants.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

CSRF_COOKIE = "minimap_csrf"
LOGIN_COOKIE = "minimap_login"
TOKEN_HEADER = "x-minimap-token"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_FORM = 1 << 20  # bytes: a clear form is small; anything bigger is refused

Handler = Callable[[Request], Awaitable[Response]]

# No other site may frame the page (a click on "Reset" must be the user's), scripts come from here only
# (htmx is served by this server), and nothing is sniffed or leaks its URL (run ids) elsewhere.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class Refused(Exception):
    """A request this server will not act on: its status and one line saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def login_value(token: str) -> str:
    """What the login cookie holds: derived from the token, so the cookie alone does not reveal it."""
    return hmac.new(token.encode(), b"minimap-ui-login", hashlib.sha256).hexdigest()


def _hostname(host_header: str) -> str:
    return urlsplit(f"//{host_header}").hostname or ""


class Guard:
    """The middleware: Host rule, token rule, cross-site POSTs refused, a CSRF cookie for every browser."""

    def __init__(self, token: str | None, allowed_hosts: frozenset[str] | None) -> None:
        self.token = token
        self.allowed_hosts = allowed_hosts

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        if self.allowed_hosts is not None and _hostname(request.headers.get("host", "")) not in self.allowed_hosts:
            return PlainTextResponse("refused: this server answers on its loopback address only\n", 400)
        if request.method not in ("GET", "HEAD") and _cross_site(request):
            return _refuse(request, 403, "refused: a request from another site")
        if self.token and request.url.path != "/login" and not self._authorised(request):
            if request.url.path.startswith("/api/") or request.method != "GET":
                return _refuse(request, 401, "refused: this server needs its token (MINIMAP_UI_TOKEN)")
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse("/login?" + urlencode({"next": target}), 303)
        fresh = CSRF_COOKIE not in request.cookies
        request.state.csrf = request.cookies.get(CSRF_COOKIE) if not fresh else secrets.token_urlsafe(24)
        response = await call_next(request)
        if fresh:
            response.set_cookie(CSRF_COOKIE, request.state.csrf, httponly=True, samesite="strict")
        response.headers.update(HEADERS)
        return response

    def _authorised(self, request: Request) -> bool:
        assert self.token is not None
        given = request.headers.get(TOKEN_HEADER, "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given:
            return hmac.compare_digest(given.encode(), self.token.encode())
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), login_value(self.token).encode())


def _cross_site(request: Request) -> bool:
    if request.headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc != request.headers.get("host", "")


def _refuse(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status)
    return PlainTextResponse(message + "\n", status)


async def read_form(request: Request) -> dict[str, list[str]]:
    """A urlencoded form whose `csrf` field matches the browser's CSRF cookie; Refused otherwise."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise Refused(415, "a form must be sent as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM:
        raise Refused(413, "the form is too large")
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = (form.get("csrf") or [""])[0]
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise Refused(403, "refused: the form's CSRF token is missing or stale; reload the page and try again")
    return form


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this server only."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
