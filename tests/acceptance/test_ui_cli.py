"""`minimap ui` as a command: the token rule at start, the token on every request, and --with-workers running a
scheduler and a worker beside the page that Ctrl-C stops together."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from minimap import api
from minimap.states import RunState
from minimap.store import engine as db
from minimap.store.storage import Store
from tests.conftest import DAGS, ROOT, minimap_cli


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(address: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(address, headers=headers or {}), timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def _wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_off_loopback_without_a_token_it_refuses_to_start(db_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MINIMAP_UI_TOKEN"}
    r = subprocess.run([sys.executable, "-m", "minimap", "ui", "--host", "0.0.0.0", "--db", db_url],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)  # fmt: skip
    assert r.returncode == 2 and r.stderr.startswith("error: refusing to serve on 0.0.0.0 without a token")
    assert len(r.stderr.strip().splitlines()) == 1
    short = minimap_cli("ui", "--host", "0.0.0.0", db_url=db_url, env={"MINIMAP_UI_TOKEN": "short"})
    assert short.returncode == 2 and "too short" in short.stderr


def test_a_port_in_use_is_one_line_and_exit_2(db_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = minimap_cli("ui", "--port", str(taken.getsockname()[1]), db_url=db_url)
    assert r.returncode == 2 and r.stderr.startswith("error: cannot listen on 127.0.0.1:")
    assert len(r.stderr.strip().splitlines()) == 1


def test_with_a_token_every_request_needs_it(db_url: str, tmp_path: Path) -> None:
    token = "s3cret-token-for-the-test"
    port = _port()
    env = {**os.environ, "MINIMAP_DATABASE_URL": db_url, "MINIMAP_UI_TOKEN": token}
    with open(tmp_path / "ui.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "minimap", "ui", "--host", "0.0.0.0", "--port", str(port)],
                                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(lambda: _get(base + "/api/runs") == 401, 30, "the page to answer")
        assert _get(base + "/api/runs", {"Authorization": f"Bearer {token}"}) == 200
        assert _get(base + "/api/runs", {"X-Minimap-Token": token}) == 200
        assert _get(base + "/api/runs", {"Authorization": "Bearer wrong"}) == 401
    finally:
        proc.terminate()
        proc.wait(30)
    assert token not in (tmp_path / "ui.log").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_with_workers_runs_the_run_and_ctrl_c_or_sigterm_stops_all_three(
    db_url: str, flags: Path, tmp_path: Path, stop: str
) -> None:
    store = Store(db.connect(db_url))
    run_id = api.trigger_file(store, str(DAGS / "ui_story.py"), conf={"flags": str(flags)}).run_id
    port = _port()
    env = {**os.environ, "MINIMAP_DATABASE_URL": db_url, "MINIMAP_POLL_INTERVAL": "0.05"}
    err = tmp_path / "ui.err"
    with open(err, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "minimap", "ui", "--with-workers", "--port", str(port)],
                                env=env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True)  # fmt: skip
    try:
        _wait(lambda: store.run(run_id).state is RunState.SUCCESS, 90, "the run to succeed")
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=2).read()
        assert json.loads(body)["items"][0]["state"] == "success"
        pids = [int(p) for p in re.findall(r"(?:scheduler|worker) pid (\d+)", err.read_text())]
        assert len(pids) == 2
        if stop == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        else:
            proc.send_signal(signal.SIGTERM)  # `kill PID`, systemd, timeout: the page's process alone
        assert proc.wait(60) == 0  # a server stopped as asked
        for pid in pids:
            _wait(lambda pid=pid: not Path(f"/proc/{pid}").exists(), 10, f"child {pid} to stop")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in [int(p) for p in re.findall(r"(?:scheduler|worker) pid (\d+)", err.read_text())]:
            with contextlib.suppress(ProcessLookupError):  # a child left behind must not outlive the test
                os.killpg(pid, signal.SIGKILL)  # each child leads its own session, with its task processes
        store.engine.dispose()
    text = err.read_text()
    assert "stopping the scheduler and the worker" in text and "Traceback" not in text
