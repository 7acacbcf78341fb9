"""How long a lost attempt waits: from a SIGKILL (or a freeze) to the instance's new start, with the default settings.

`python bench/recovery.py [--repeat 3]`, on SQLite and on Postgres (MINIMAP_BENCH_PG):

- worker killed: `kill -9` of a `minimap worker` running two long attempts, a second worker idle beside it and a
  scheduler on the same host (the process is seen gone at the scheduler's next reclaim);
- worker frozen: `kill -STOP` instead, as a host that vanished looks (its lease, MINIMAP_LEASE_TIMEOUT, expires);
- run killed: `kill -9` of `minimap run`, then `minimap resume` at once (its start-up is part of the figure);
- the at-least-once window: `kill -9` of `minimap run` in the middle of 16 task processes of 20 ms each: how many
  side effects had happened whose success was not recorded (they run again on resume). `--code DIR` runs the
  minimap of another checkout (e.g. the commit before a change) for this figure alone: `--window-only --code DIR`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import database  # noqa: E402
from minimap import api  # noqa: E402
from minimap.states import TIState  # noqa: E402
from minimap.store.storage import Store  # noqa: E402

DAG = str(HERE / "sleepy.py")
CODE = HERE.parent  # the checkout whose minimap the processes run (`--code`)


def start(url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MINIMAP_DATABASE_URL": url}
    return subprocess.Popen([sys.executable, "-m", "minimap", *args], env=env, cwd=CODE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def wait(condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.02)


def restarted(store: Store, run_id: str, lost: list[int]) -> float:
    """Once every lost instance started again: the latest of their new start times (epoch seconds)."""

    def again() -> list[datetime]:
        rows = store.instances(run_id, "nap", map_indexes=lost)
        return [r.started_at for r in rows if r.try_number >= 2 and r.state is TIState.RUNNING and r.started_at]

    wait(lambda: len(again()) == len(lost))
    return max(again()).timestamp()


def worker_lost(url: str, sig: signal.Signals) -> float:
    store = api.open_store(url)
    run_id = api.trigger_file(store, DAG, conf={"n": 2, "sleep": 120}).run_id
    procs = [start(url, "scheduler")]
    try:
        victim = start(url, "worker", "--concurrency", "2")
        procs.append(victim)
        wait(lambda: len(store.instances(run_id, "nap", [TIState.RUNNING])) == 2)
        procs.append(start(url, "worker", "--concurrency", "2"))  # idle: nothing else is queued
        time.sleep(2)  # let it register and poll
        lost = [i.map_index for i in store.instances(run_id, "nap", [TIState.RUNNING])]
        killed = datetime.now(timezone.utc).timestamp()
        os.kill(victim.pid, sig)
        if sig is signal.SIGKILL:
            victim.wait()  # reaped, as a service manager does
        return restarted(store, run_id, lost) - killed
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        store.engine.dispose()


def run_lost(url: str) -> float:
    store = api.open_store(url)
    runner = start(url, "run", DAG, "--conf", '{"n": 2, "sleep": 120}')
    resumed = None
    try:
        wait(lambda: bool(store.runs(1)))
        run_id = store.runs(1)[0].run_id
        wait(lambda: len(store.instances(run_id, "nap", [TIState.RUNNING])) == 2)
        killed = datetime.now(timezone.utc).timestamp()
        os.killpg(runner.pid, signal.SIGKILL)  # the run and its task processes: a crashed machine
        runner.wait()
        resumed = start(url, "resume", "--run-id", run_id)
        return restarted(store, run_id, [0, 1]) - killed
    finally:
        for p in (runner, resumed):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        store.engine.dispose()


def unrecorded(url: str) -> float:
    """Side effects done but not recorded as success when `minimap run` was killed."""
    store = api.open_store(url)
    ledger = Path(tempfile.mkdtemp()) / "ledger"
    conf = json.dumps({"n": 100_000, "sleep": 0.02, "ledger": str(ledger)})
    runner = start(url, "run", str(HERE / "ledger.py"), "--conf", conf)
    try:
        wait(lambda: ledger.exists() and len(ledger.read_text().splitlines()) >= 500)
        time.sleep(0.5)
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait()
        run_id = store.runs(1)[0].run_id
        done = {int(line) for line in ledger.read_text().splitlines()}
        recorded = {i.map_index for i in store.instances(run_id, "side_effect", [TIState.SUCCESS])}
        return len(done - recorded)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
        store.engine.dispose()


def main() -> None:
    global CODE
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", type=Path, default=HERE.parent, help="the checkout whose minimap runs")
    parser.add_argument("--window-only", action="store_true", help="measure the at-least-once window alone")
    args = parser.parse_args()
    CODE = args.code
    scenarios: list[tuple[str, Callable[[str], float], int]] = [
        ("worker killed (kill -9), second worker idle", lambda u: worker_lost(u, signal.SIGKILL), args.repeat),
        ("worker frozen (kill -STOP): lease expiry", lambda u: worker_lost(u, signal.SIGSTOP), 1),
        ("minimap run killed (kill -9), then resume", run_lost, args.repeat),
    ]
    if args.window_only:
        scenarios = []
    for backend in ("sqlite", "postgres"):
        counts = []
        for _ in range(2 * args.repeat):
            with database(backend) as url:
                counts.append(unrecorded(url))
        print(f"{backend:<8} {'run killed mid-stream: ended, not recorded':<46} {sorted(counts)} (median "
              f"{statistics.median(counts):g}; code: {CODE})", flush=True)  # fmt: skip
        for name, measure, repeat in scenarios:
            took = []
            for _ in range(repeat):
                with database(backend) as url:
                    took.append(measure(url))
            print(f"{backend:<8} {name:<46} kill -> new start: median {statistics.median(took):6.2f} s "
                  f"(min {min(took):.2f}, max {max(took):.2f}, {repeat} runs)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
