"""Where the time of `minimap run` goes: py-spy samples of every process, sorted into buckets.

`python bench/run.py --only profile` (or `python -m bench.profile URL N`) runs `minimap run bench/fanout.py` under
`py-spy record --subprocesses --idle` (pip install py-spy) and prints, for the driver process (scheduler + worker
loop) and for the task processes, the share of samples in each bucket. Idle samples are kept: a driver waiting on
the database server or on a pipe is time the run spends, too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent

# First match wins, checked from the innermost frame outwards (so a commit inside an exchange is a commit).
DRIVER = [
    ("exchange: COMMIT (WAL flush)", ("commit (psycopg", "_do_commit", "do_commit")),
    ("exchange: record completions", ("Store._record", "record_completions")),
    ("exchange: claim (lock, read, pick, update)", ("Store._claim", "claim_ready")),
    ("exchange: other (begin, heartbeat)", ("Store.exchange", "Store.heartbeat")),
    ("dispatch: pipe write to a task process", ("TaskProcess.send",)),
    ("dispatch: building the Job", ("Worker._dispatch",)),
    ("collect: wait for an outcome, pipe read", ("Worker.collect",)),
    ("scheduler pass (counts, expand, settle)", ("SchedulerLoop.tick", "Scheduler.tick")),
    ("progress line", ("Progress.__call__",)),
    ("startup: imports, load DAG, trigger", ("_find_and_load", "load_dag", "trigger")),
]


def bucket(frames: list[str], rules: list[tuple[str, tuple[str, ...]]]) -> str:
    for frame in reversed(frames):
        for name, marks in rules:
            if any(frame.startswith(m) or m in frame for m in marks):
                return name
    return "other"


def categorize(raw: str) -> tuple[Counter[str], Counter[str]]:
    """Samples of the driver and of the task processes, by bucket."""
    driver: Counter[str] = Counter()
    child: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        processes = [f for f in frames if f.startswith("process ")]
        if len(processes) > 1:  # a task process (forked from the driver)
            running = any(f.startswith("execute (") for f in frames)
            child["running the attempt" if running else "waiting for a job / pipe"] += int(count)
        else:
            name = bucket(frames, DRIVER)
            driver[name] += int(count)
            if name == "other" and os.environ.get("BENCH_PROFILE_OTHER"):
                print(int(count), ";".join(f.split(" (")[0] for f in frames[-6:]))
    return driver, child


def profile(url: str, n: int, rate: int = 100, children: bool = False) -> tuple[Counter[str], Counter[str], float]:
    """Run the fan-out once under py-spy; samples by bucket for the driver and the task processes, wall s."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "raw.txt"
        env = {**os.environ, "MINIMAP_DATABASE_URL": url}
        spy_args = ["--subprocesses"] if children else []
        minimap = [sys.executable, "-m", "minimap", "run", "bench/fanout.py", "--conf", f'{{"n": {n}}}']
        cmd = [spy, "record", *spy_args, "--idle", "-r", str(rate), "-f", "raw", "-o", str(out), "--", *minimap]
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=HERE.parent, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        driver, child = categorize(out.read_text())
    return driver, child, wall


def report(driver: Counter[str], child: Counter[str]) -> list[tuple[str, float]]:
    """(bucket, % of the driver's samples) and the task processes' busy share, as printable pairs."""
    total = sum(driver.values()) or 1
    rows = [(f"driver: {k}", 100 * v / total) for k, v in driver.most_common()]
    if child:
        rows.append(("task processes: running attempts (% of one core)", 100 * child["running the attempt"] / total))
    return rows


if __name__ == "__main__":
    d, c, w = profile(sys.argv[1], int(sys.argv[2]))
    for name, pct in report(d, c):
        print(f"{pct:6.1f} %  {name}")
    print(f"wall {w:.1f} s under py-spy")
