"""Stopping `minimap run` / `minimap resume` with real signals: running attempts finish within the grace
period, the rest is handed back without using up a try, nothing is left `running`, and resume carries on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from minimap import api
from minimap.states import RunState, TIState
from minimap.store.storage import Store
from tests.conftest import DAGS, ROOT, ledger, minimap_cli

MANY = str(DAGS / "many.py")


def start(db_url: str, tmp: Path, *args: str, grace: float) -> tuple[subprocess.Popen[str], Path]:
    """`minimap ARGS` in its own session (as a service manager starts it); its stderr goes to a file."""
    err = tmp / f"stderr-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "minimap", *args],
        cwd=ROOT,
        env={**os.environ, "MINIMAP_DATABASE_URL": db_url, "MINIMAP_STOP_GRACE": str(grace)},
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),
        text=True,
        start_new_session=True,
    )
    return proc, err


def wait_running(store: Store, n: int, proc: subprocess.Popen[str]) -> str:
    """The newest run's id, once `n` of its `work` instances are running."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = store.runs(1)
        if runs and len(store.instances(runs[0].run_id, "work", [TIState.RUNNING])) >= n:
            return runs[0].run_id
        assert proc.poll() is None, "minimap exited before its attempts started"
        time.sleep(0.05)
    pytest.fail(f"{n} attempts never ran at once")


def stop(proc: subprocess.Popen[str], *signals: signal.Signals, timeout: float = 30) -> int:
    for i, sig in enumerate(signals):
        if i:
            time.sleep(0.3)
        proc.send_signal(sig)  # the minimap process only, as `kill PID` does; its task processes ignore it anyway
    return proc.wait(timeout=timeout)


def assert_nothing_running(store: Store, run_id: str) -> None:
    assert not store.instances(run_id, states=[TIState.RUNNING])


def test_sigterm_lets_running_attempts_finish_then_resume_carries_on(db_url: str, flags: Path, tmp_path: Path) -> None:
    conf = json.dumps({"n": 15, "sleep": 1.5, "flags": str(flags)})
    proc, err = start(db_url, tmp_path, "run", MANY, "--conf", conf, grace=30)
    store = api.open_store(db_url)
    run_id = wait_running(store, 5, proc)
    assert stop(proc, signal.SIGTERM) == 143
    lines = err.read_text().splitlines()
    assert lines[-1] == (
        f"stopped by SIGTERM: run {run_id} is unfinished; `minimap resume --run-id {run_id}` carries on"
    ), lines
    assert_nothing_running(store, run_id)
    work = store.instances(run_id, "work")
    done = [i for i in work if i.state is TIState.SUCCESS]
    assert len(done) >= 5 and all(i.try_number == 1 for i in done)  # the five running when stopped finished
    assert {i.state for i in work} == {TIState.SUCCESS, TIState.QUEUED}
    assert store.run(run_id).state is RunState.RUNNING

    resumed = minimap_cli("resume", "--run-id", run_id, db_url=db_url)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(Counter(line.split()[1] for line in ledger(flags)).values()) == [1] * 15  # each item once
    assert store.instances(run_id, "total")[0].result == sum(range(15))


@pytest.mark.parametrize("command", ["run", "resume"])
def test_what_outlives_the_grace_period_is_handed_back_without_using_a_try(
    db_url: str, flags: Path, tmp_path: Path, command: str
) -> None:
    store = api.open_store(db_url)
    conf = {"n": 8, "sleep": 30, "flags": str(flags)}
    if command == "run":
        proc, err = start(db_url, tmp_path, "run", MANY, "--conf", json.dumps(conf), grace=0.5)
    else:
        created = api.trigger_file(store, MANY, conf=conf)
        proc, err = start(db_url, tmp_path, "resume", "--run-id", created.run_id, grace=0.5)
    run_id = wait_running(store, 5, proc)
    assert stop(proc, signal.SIGTERM) == 143
    assert err.read_text().splitlines()[-1] == (
        f"stopped by SIGTERM: run {run_id} is unfinished, 5 unfinished attempts handed back; "
        f"`minimap resume --run-id {run_id}` carries on"
    )
    assert_nothing_running(store, run_id)
    work = store.instances(run_id, "work")
    assert [i.state for i in work] == [TIState.QUEUED] * 8
    back = [i for i in work if i.try_number == 1]
    assert len(back) == 5 and all(i.max_tries == 3 for i in back)  # retries=1, plus the try handed back
    assert all("was stopped by SIGTERM" in (i.error or "") for i in back)
    assert {t.error_type for t in store.tries(run_id, "work")} == {"Interrupted"}
    assert ledger(flags) == []  # nothing ran to its end


def test_a_second_signal_stops_at_once(db_url: str, flags: Path, tmp_path: Path) -> None:
    conf = json.dumps({"n": 8, "sleep": 30, "flags": str(flags)})
    proc, err = start(db_url, tmp_path, "run", MANY, "--conf", conf, grace=60)
    store = api.open_store(db_url)
    run_id = wait_running(store, 5, proc)
    began = time.monotonic()
    assert stop(proc, signal.SIGTERM, signal.SIGINT) == 143  # named after the first signal
    assert time.monotonic() - began < 20  # not the 60 s grace period, nor the 30 s tasks
    assert "5 unfinished attempts handed back" in err.read_text().splitlines()[-1]
    assert_nothing_running(store, run_id)


def test_ctrl_c_is_a_graceful_stop_too(db_url: str, flags: Path, tmp_path: Path) -> None:
    conf = json.dumps({"n": 10, "sleep": 1.0, "flags": str(flags)})
    proc, err = start(db_url, tmp_path, "run", MANY, "--conf", conf, grace=30)
    store = api.open_store(db_url)
    run_id = wait_running(store, 5, proc)
    assert stop(proc, signal.SIGINT) == 130
    assert f"stopped by SIGINT: run {run_id} is unfinished" in err.read_text()
    assert_nothing_running(store, run_id)
    assert len(store.instances(run_id, "work", [TIState.SUCCESS])) >= 5


@pytest.mark.slow
def test_a_run_of_100000_items_stops_on_sigterm_and_resumes_without_running_anything_twice(
    db_url: str, tmp_path: Path
) -> None:
    n = 100_000
    proc, err = start(db_url, tmp_path, "run", str(DAGS / "large.py"), "--conf", json.dumps({"n": n}), grace=8)
    store = api.open_store(db_url)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        runs = store.runs(1)
        if runs and store.counts(runs[0].run_id).get("noop", {}).get(TIState.SUCCESS, 0) >= 5_000:
            break
        assert proc.poll() is None, err.read_text()
        time.sleep(0.5)
    run_id = store.runs(1)[0].run_id
    assert stop(proc, signal.SIGTERM, timeout=60) == 143, err.read_text()[-2000:]
    assert f"`minimap resume --run-id {run_id}` carries on" in err.read_text().splitlines()[-1]
    assert_nothing_running(store, run_id)
    counts = store.counts(run_id)["noop"]
    assert 5_000 <= counts[TIState.SUCCESS] < n and counts[TIState.QUEUED] > 0

    resumed = minimap_cli("resume", "--run-id", run_id, db_url=db_url, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert store.instances(run_id, "collect")[0].result == n
    succeeded = [t for t in store.tries(run_id, "noop") if t.state is TIState.SUCCESS]
    assert len(succeeded) == n and len({t.map_index for t in succeeded}) == n  # each item ran to its end once
