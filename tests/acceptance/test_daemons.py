"""Schedulers and workers as separate OS processes: real signals, real crashes, a real Postgres restart."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from minimap import api
from minimap.states import RunState, TIState
from minimap.store.storage import Store
from tests.conftest import DAGS, ROOT, ledger
from tests.integration.test_engine import max_concurrent

pytestmark = pytest.mark.slow  # real daemons, signals and a Postgres restart: seconds each

MANY = str(DAGS / "many.py")
FAST_LEASE = {"MINIMAP_HEARTBEAT_INTERVAL": "0.3", "MINIMAP_LEASE_TIMEOUT": "2", "MINIMAP_POLL_INTERVAL": "0.05"}


class Processes:
    """minimap daemons started by a test, each in its own session so a test can kill it (and only it)."""

    def __init__(self, db_url: str, tmp: Path) -> None:
        self.db_url = db_url
        self.tmp = tmp
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{args[0]}-{len(self.started)}.log", "wb")  # noqa: SIM115 -- closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "minimap", *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MINIMAP_DATABASE_URL": self.db_url, **FAST_LEASE, **(env or {})},
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp.glob("*.log")))

    def stop_all(self) -> None:
        for p in self.started:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
def procs(db_url: str, tmp_path: Path) -> Iterator[Processes]:
    p = Processes(db_url, tmp_path)
    yield p
    p.stop_all()


def wait_for(condition: Callable[[], bool], timeout: float, what: str, procs: Processes) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}\n{procs.logs()[-4000:]}")


def trigger(store: Store, flags: Path, n: int, sleep: float) -> str:
    return api.trigger_file(store, MANY, conf={"n": n, "sleep": sleep, "flags": str(flags)}).run_id


def finished(store: Store, run_id: str) -> Callable[[], bool]:
    return lambda: store.run(run_id).state in (RunState.SUCCESS, RunState.FAILED)


def test_two_workers_and_a_scheduler_finish_200_instances_under_the_cap(
    store: Store, procs: Processes, flags: Path
) -> None:
    run_id = trigger(store, flags, 200, 0.05)  # ~2 s of work: long enough for both workers to take part
    procs.start("scheduler")
    procs.start("worker", "--concurrency", "4")
    procs.start("worker", "--concurrency", "4")
    wait_for(finished(store, run_id), 90, "the run to finish", procs)
    assert store.run(run_id).state is RunState.SUCCESS
    work = store.instances(run_id, "work")
    assert len(work) == 200 and all(i.try_number == 1 for i in work)
    assert max_concurrent(work) == 5  # 8 slots across two processes, capped at max_active_tasks=5
    assert len({i.pid for i in work}) == 2  # both workers took part
    assert store.instances(run_id, "total")[0].result == sum(range(200))


def _kill_worker_mid_run(store: Store, procs: Processes, flags: Path, sig: signal.Signals) -> tuple[str, dict, Counter]:
    run_id = trigger(store, flags, 10, 1.0)
    procs.start("scheduler")
    victim = procs.start("worker", "--concurrency", "2")
    wait_for(
        lambda: len(store.instances(run_id, "work", [TIState.RUNNING])) == 2, 30, "the first worker to start", procs
    )
    procs.start("worker", "--concurrency", "3")
    wait_for(lambda: len(store.instances(run_id, "work", [TIState.SUCCESS])) >= 2, 30, "some successes", procs)
    succeeded = {i.map_index: i for i in store.instances(run_id, "work", [TIState.SUCCESS])}
    os.kill(victim.pid, sig)  # the worker process only: its task processes die with it (or freeze with it)
    if sig is signal.SIGKILL:
        victim.wait()  # reap it, as a supervisor would (a zombie's pid still answers)
    wait_for(finished(store, run_id), 60, "the run to finish", procs)
    if sig is signal.SIGSTOP:
        os.killpg(victim.pid, signal.SIGKILL)
    assert store.run(run_id).state is RunState.SUCCESS, procs.logs()[-3000:]
    after = {i.map_index: i for i in store.instances(run_id, "work")}
    for index, row in succeeded.items():  # an instance that succeeded never ran again
        assert (after[index].try_number, after[index].ended_at) == (row.try_number, row.ended_at)
    return run_id, after, Counter(line.split()[1] for line in ledger(flags))


def test_a_killed_worker_is_detected_and_its_instances_retried_elsewhere(
    store: Store, procs: Processes, flags: Path
) -> None:
    run_id, after, runs = _kill_worker_mid_run(store, procs, flags, signal.SIGKILL)
    lost = [t for t in store.tries(run_id, "work") if t.error_type == "WorkerLost"]
    assert lost and all("is gone (its process no longer exists)" in (t.error_message or "") for t in lost)
    for t in lost:
        assert after[t.map_index].try_number == 2 and after[t.map_index].state is TIState.SUCCESS
        assert runs[str(t.map_index)] == 1  # the killed attempt died with its worker, before its side effect


def test_a_frozen_worker_is_failed_by_its_lease(store: Store, procs: Processes, flags: Path) -> None:
    run_id, after, _ = _kill_worker_mid_run(store, procs, flags, signal.SIGSTOP)
    lost = [t for t in store.tries(run_id, "work") if t.error_type == "WorkerLost"]
    assert lost and all("stopped heartbeating" in (t.error_message or "") for t in lost)


def test_a_killed_scheduler_is_replaced_and_nothing_is_expanded_or_queued_twice(
    store: Store, procs: Processes, flags: Path
) -> None:
    run_id = trigger(store, flags, 40, 0.05)
    first = procs.start("scheduler")
    procs.start("worker", "--concurrency", "5")
    wait_for(lambda: len(store.instances(run_id, "work", [TIState.SUCCESS])) >= 5, 30, "progress", procs)
    os.killpg(first.pid, signal.SIGKILL)
    procs.start("scheduler")
    procs.start("scheduler")  # two at once must be safe too
    wait_for(finished(store, run_id), 60, "the run to finish", procs)
    assert store.run(run_id).state is RunState.SUCCESS
    work = store.instances(run_id, "work")
    assert [i.map_index for i in work] == list(range(40)) and all(i.try_number == 1 for i in work)
    assert sorted(Counter(line.split()[1] for line in ledger(flags)).values()) == [1] * 40


def test_sigterm_lets_running_attempts_finish_within_the_grace_period(
    store: Store, procs: Processes, flags: Path
) -> None:
    run_id = trigger(store, flags, 3, 1.0)
    procs.start("scheduler")
    worker = procs.start("worker", "--concurrency", "3", "--grace-period", "20")
    wait_for(lambda: len(store.instances(run_id, "work", [TIState.RUNNING])) == 3, 30, "three running", procs)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    work = store.instances(run_id, "work")
    assert [(i.state, i.try_number) for i in work] == [(TIState.SUCCESS, 1)] * 3


def test_sigterm_hands_back_what_outlives_the_grace_period(store: Store, procs: Processes, flags: Path) -> None:
    run_id = trigger(store, flags, 2, 30.0)
    procs.start("scheduler")
    worker = procs.start("worker", "--concurrency", "2", "--grace-period", "0.5")
    wait_for(lambda: len(store.instances(run_id, "work", [TIState.RUNNING])) == 2, 30, "two running", procs)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
    work = store.instances(run_id, "work")
    assert [i.state for i in work] == [TIState.QUEUED] * 2  # back in the queue, no try used up
    assert all(i.max_tries == 3 and "stopped (SIGTERM)" in (i.error or "") for i in work)
    assert {t.error_type for t in store.tries(run_id, "work")} == {"Interrupted"}


def test_a_postgres_restart_mid_run_loses_nothing(tmp_path: Path, flags: Path) -> None:
    cluster = ThrowawayPostgres(Path(tempfile.mkdtemp(prefix="minimap-pg-")) / "pg")
    try:
        url = cluster.start()
        store = api.open_store(url)
        run_id = trigger(store, flags, 60, 0.2)  # ~2 s of work left when the restart begins
        procs = Processes(url, tmp_path)
        try:
            runner = procs.start("resume", "--run-id", run_id)  # `run`'s loop: scheduler and worker in one
            procs.start("worker", "--concurrency", "3")
            procs.start("scheduler")
            wait_for(lambda: len(store.instances(run_id, "work", [TIState.SUCCESS])) >= 10, 60, "progress", procs)
            assert store.run(run_id).state is RunState.RUNNING  # the outage lands in the middle of the run
            cluster.restart(down_for=2.0)
            assert runner.wait(timeout=120) == 0, procs.logs()[-4000:]
            logs = procs.logs()
            assert "retrying with backoff" in logs and "back after" in logs  # they saw it go, and come back
        finally:
            procs.stop_all()
        store = api.open_store(url)
        assert store.run(run_id).state is RunState.SUCCESS
        assert {i.state for i in store.instances(run_id)} == {TIState.SUCCESS}
        assert store.instances(run_id, "total")[0].result == sum(range(60))
    finally:
        cluster.stop()


class ThrowawayPostgres:
    """A Postgres cluster of the test's own, on a free port, that the test may restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bin = self._bindir()
        self.port = self._free_port()
        self.user_prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @staticmethod
    def _bindir() -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            pytest.skip("no PostgreSQL server binaries (pg_ctl) on this machine")
        return found[-1].parent

    @staticmethod
    def _free_port() -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.user_prefix, *args], capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args[:1])} failed: {done.stdout}{done.stderr}")

    def start(self) -> str:
        self.folder.mkdir(parents=True)
        if self.user_prefix:
            os.chmod(self.folder.parent, 0o777)
            subprocess.run(["chown", "postgres", str(self.folder)], check=True)
        self._run(str(self.bin / "initdb"), "-D", str(self.folder / "data"), "-U", "postgres", "-A", "trust")
        self._pg_ctl("start")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-o", options, "-w", "-m", "fast",
                  "-l", str(self.folder / "log"), action)  # fmt: skip

    def restart(self, down_for: float) -> None:
        self._pg_ctl("stop")
        time.sleep(down_for)
        self._pg_ctl("start")

    def stop(self) -> None:
        try:
            self._pg_ctl("stop")
        except Exception:  # noqa: BLE001 -- it may never have started
            pass
        shutil.rmtree(self.folder.parent, ignore_errors=True)


def test_four_worker_processes_never_run_more_than_max_active_tasks(store: Store, procs: Processes) -> None:
    """Issue 2's measurement: 12 sleeping instances, max_active_tasks=3, four separate worker processes."""
    run_id = api.trigger_file(store, str(DAGS / "caps.py")).run_id
    procs.start("scheduler")
    for _ in range(4):
        procs.start("worker", "--concurrency", "3")
    wait_for(finished(store, run_id), 60, "the run to finish", procs)
    sleepy = store.instances(run_id, "sleepy")
    assert store.run(run_id).state is RunState.SUCCESS
    assert max_concurrent(sleepy) == 3
