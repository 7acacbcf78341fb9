"""`minimap ui`: serve the page with uvicorn; with --with-workers also a scheduler and a worker, as child
processes (the same `minimap scheduler` / `minimap worker` commands) that stop when the page stops."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from minimap import api
from minimap.exceptions import ConfigError
from minimap.ui.security import LOOPBACK, is_loopback

log = logging.getLogger(__name__)

TOKEN_VARIABLE = "MINIMAP_UI_TOKEN"
STOP_WAIT = 40.0  # seconds for a child to stop after SIGTERM: a worker lets attempts finish first


def check_access(host: str) -> str | None:
    """The token every request must carry (None on loopback without one); off loopback, it is required."""
    token = os.environ.get(TOKEN_VARIABLE) or None
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without a token: set {TOKEN_VARIABLE} (every request must then carry it), "
            "or keep the default --host 127.0.0.1"
        )
    if token is not None and len(token) < 16:
        raise ConfigError(f"{TOKEN_VARIABLE} is too short to be a secret: use at least 16 characters")
    return token


def serve(db_url: str | None, host: str, port: int, with_workers: bool, concurrency: int) -> None:
    """Serve the page until Ctrl-C or SIGTERM (and the scheduler and worker with it, when asked)."""
    try:
        import uvicorn

        from minimap.ui.app import create_app
    except ImportError as e:
        raise ConfigError(f"`minimap ui` needs the ui extra: pip install 'minimap[ui]' ({e})") from None
    token = check_access(host)
    store = api.open_store(db_url)  # upgrades the schema once, before any child process touches it
    allowed = LOOPBACK | {host} if is_loopback(host) and token is None else None
    app = create_app(store, token, frozenset(allowed) if allowed else None)
    sock = _listen(host, port)  # before the children start: a port in use is one line, not a half-started stack
    shown = f"[{host}]" if ":" in host else host
    print(f"minimap ui on http://{shown}:{port}/ ({store.url}); Ctrl-C stops", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    # uvicorn stops on SIGTERM and then raises it again under the handler it found; with the default one this process
    # would die there, before the scheduler and worker are stopped (they were left running). Ours ends serve() as
    # Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        with _children(db_url, concurrency) if with_workers else _nothing():
            try:
                server.run(sockets=[sock])
            except (KeyboardInterrupt, Terminated):  # uvicorn re-raises the signal it stopped on: as was asked
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)


class Terminated(BaseException):
    """SIGTERM arrived: stop serving, then stop the children (BaseException, like KeyboardInterrupt)."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port; a port in use or an unknown address is a ConfigError."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextmanager
def _children(db_url: str | None, concurrency: int) -> Iterator[None]:
    """A scheduler and a worker beside the page; on the way out each gets SIGTERM and is waited for."""
    env = dict(os.environ)
    if db_url:
        env["MINIMAP_DATABASE_URL"] = db_url  # not on the command line, where `ps` would show a password
    base = [sys.executable, "-m", "minimap"]
    # Each in its own session: Ctrl-C reaches this process only, which then stops each child with one SIGTERM
    # (a worker's graceful stop: running attempts finish, or are handed back after its grace period).
    procs = [
        subprocess.Popen([*base, "scheduler"], env=env, start_new_session=True),
        subprocess.Popen([*base, "worker", "--concurrency", str(concurrency)], env=env, start_new_session=True),
    ]
    print(f"scheduler pid {procs[0].pid}, worker pid {procs[1].pid}", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        print("stopping the scheduler and the worker", file=sys.stderr, flush=True)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                log.warning("pid %d did not stop within %.0f s: killing it", p.pid, STOP_WAIT)
                p.kill()
                p.wait()
