"""minimap's benchmarks: `python bench/run.py` (a few minutes; `--quick` skips N = 100,000).

Prints one line per figure and writes bench/results/latest.json and latest.md. Every scenario runs on SQLite and
on Postgres (MINIMAP_BENCH_PG, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres, as an admin URL
that may create databases). Machines here are shared and noisy: compare the ratios measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.floor import floor  # noqa: E402
from bench.profile import profile, report  # noqa: E402
from minimap import api  # noqa: E402
from minimap.store.rows import InstanceRow  # noqa: E402
from minimap.store.storage import Store  # noqa: E402

PG_ADMIN = os.environ.get("MINIMAP_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
results: list[dict[str, Any]] = []


def figure(scenario: str, backend: str, name: str, value: float, unit: str, **extra: Any) -> None:
    results.append({"scenario": scenario, "backend": backend, "figure": name, "value": value, "unit": unit, **extra})
    print(f"{scenario:<13} {backend:<8} {name:<52} {value:>12,.1f} {unit}", flush=True)


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh, empty database for one measurement."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{d}/bench.db"
        return
    name = f"minimap_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def memory(pids: list[int]) -> tuple[int, int]:
    """Summed RSS and PSS in bytes (smaps_rollup)."""
    rss = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return rss, pss


def run_cli(url: str, *args: str, limit: float | None = None) -> tuple[float, int, int]:
    """Run `minimap ARGS` to its end (or stop it with SIGTERM after `limit` s): wall seconds and the peak RSS and
    PSS of its process tree."""
    env = {**os.environ, "MINIMAP_DATABASE_URL": url}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "minimap", *args], env=env, cwd=HERE.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    peak_rss = peak_pss = 0
    while proc.poll() is None:
        rss, pss = memory(tree(proc.pid))
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.05)
        if limit is not None and time.perf_counter() - start > limit:
            proc.terminate()  # graceful: attempts under way are handed back
            proc.wait()
            return time.perf_counter() - start, peak_rss, peak_pss
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"minimap {' '.join(args)} failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, peak_rss, peak_pss


def rows(store: Store, task_id: str) -> list[InstanceRow]:
    run_id = store.latest_run().run_id
    return store.instances(run_id, task_id)


def span(instances: list[InstanceRow]) -> float:
    return (max(i.ended_at for i in instances) - min(i.started_at for i in instances)).total_seconds()  # type: ignore[type-var,operator]


def fanout(backend: str, n: int) -> None:
    with database(backend) as url:
        wall, rss, pss = run_cli(url, "run", "bench/fanout.py", "--conf", json.dumps({"n": n}))
        store = api.open_store(url)
        mapped = rows(store, "noop")
        produce, collect = rows(store, "produce")[0], rows(store, "collect")[0]
        run = store.latest_run()
        assert len(mapped) == n and collect.result == n
        rate = n / span(mapped)
        expand = (min(i.started_at for i in mapped) - produce.ended_at).total_seconds()  # type: ignore[operator,type-var]
        handoff = (collect.started_at - max(i.ended_at for i in mapped)).total_seconds()  # type: ignore[operator,type-var]
        store.engine.dispose()
    with database(backend) as url:
        fl = floor(url, n, processes=1)
    key = f"fanout-{n}"
    figure(key, backend, "wall time, run start to end (s)", (run.ended_at - run.started_at).total_seconds(), "s")  # type: ignore[operator]
    figure(key, backend, "wall time of `minimap run` (s)", wall, "s")
    figure(key, backend, "mapped instances per second", rate, "/s")
    figure(key, backend, "floor: plain claim + commit per completion", fl["per_s"], "/s")
    figure(key, backend, "ratio of the floor", 100 * rate / fl["per_s"], "%")
    figure(key, backend, "producer end -> first mapped start (ms)", 1000 * expand, "ms")
    figure(key, backend, "last mapped end -> downstream start (ms)", 1000 * handoff, "ms")
    figure(key, backend, "peak RSS, all minimap processes (MB)", rss / 1e6, "MB")
    figure(key, backend, "peak PSS, all minimap processes (MB)", pss / 1e6, "MB")


@contextmanager
def daemons(url: str, env_extra: dict[str, str]) -> Iterator[None]:
    """A `minimap scheduler` and a `minimap worker` on `url` (default poll interval) for the block's duration."""
    env = {**os.environ, "MINIMAP_DATABASE_URL": url, **env_extra}
    start = [sys.executable, "-m", "minimap"]
    procs = [subprocess.Popen([*start, role], env=env, stderr=subprocess.DEVNULL) for role in ("scheduler", "worker")]
    try:
        time.sleep(2.0)  # both started, listening and idle
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def to_end(store: Store, run_id: str, by_daemons: bool) -> None:
    """Run `run_id` to its end: here (as `minimap run` does) or by watching daemons finish it."""
    if not by_daemons:
        api.run_to_end(store, run_id)
        return
    while store.run(run_id).state.value not in ("success", "failed"):
        time.sleep(0.05)


def latency(backend: str, repeats: int, mode: str = "run") -> None:
    """Hand-off and freed-slot latency under `minimap run` (mode "run"), or under a scheduler and a worker daemon
    with LISTEN/NOTIFY ("daemons") or polling alone ("daemons-poll", MINIMAP_NOTIFY=0)."""
    handoffs: list[float] = []
    gaps: list[float] = []
    makespans: list[float] = []
    scenario = "latency" if mode == "run" else f"latency-{mode}"
    with database(backend) as url:
        store = api.open_store(url)
        env = {"MINIMAP_NOTIFY": "0" if mode == "daemons-poll" else "1"}
        with daemons(url, env) if mode != "run" else nullcontext():
            for _ in range(repeats):
                r = api.trigger_file(store, "bench/latency.py", "handoff")
                to_end(store, r.run_id, mode != "run")
                mapped, collect = store.instances(r.run_id, "noop"), store.instances(r.run_id, "collect")[0]
                handoffs.append((collect.started_at - max(i.ended_at for i in mapped)).total_seconds())  # type: ignore[operator,type-var]
            for _ in range(max(2, repeats // 4)):
                r = api.trigger_file(store, "bench/latency.py", "slots")
                to_end(store, r.run_id, mode != "run")
                sleeps = store.instances(r.run_id, "sleep")
                makespans.append(span(sleeps))
                ends = sorted(i.ended_at for i in sleeps)  # type: ignore[type-var]
                for i in sorted(sleeps, key=lambda i: i.started_at)[3:]:  # type: ignore[arg-type,return-value]
                    freed = max(e for e in ends if e <= i.started_at)  # type: ignore[operator]
                    gaps.append((i.started_at - freed).total_seconds())  # type: ignore[operator]
        store.engine.dispose()

    def pct(values: list[float], p: int) -> float:
        return 1000 * statistics.quantiles(values, n=100, method="inclusive")[p - 1]

    n = len(handoffs)
    figure(scenario, backend, "last mapped end -> downstream start p50 (ms)", pct(handoffs, 50), "ms", samples=n)
    figure(scenario, backend, "last mapped end -> downstream start p99 (ms)", pct(handoffs, 99), "ms")
    figure(scenario, backend, "freed slot -> next start p50 (ms)", pct(gaps, 50), "ms", samples=len(gaps))
    figure(scenario, backend, "freed slot -> next start p99 (ms)", pct(gaps, 99), "ms")
    figure(scenario, backend, "12 x 0.2 s at cap 3: makespan (ideal 0.8 s)", statistics.median(makespans), "s")


@contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set, restored afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def scale_out(workers: int, n: int) -> None:
    # Each worker brings 16 slots: the run's cap and parallelism are raised to 16 per worker, so that adding a
    # worker adds slots (under the default cap of 16, four workers would split the same 16 slots four ways).
    caps = {"BENCH_MAX_ACTIVE_TASKS": str(16 * workers), "MINIMAP_PARALLELISM": str(max(32, 16 * workers))}
    with database("postgres") as url, patched_env(caps):
        store = api.open_store(url)
        run_id = api.trigger_file(store, "bench/fanout.py", conf={"n": n}).run_id
        env = {**os.environ, "MINIMAP_DATABASE_URL": url, "MINIMAP_POLL_INTERVAL": "0.05"}
        start = [sys.executable, "-m", "minimap"]
        procs = [subprocess.Popen([*start, "scheduler"], env=env, stderr=subprocess.DEVNULL)]
        procs += [subprocess.Popen([*start, "worker", "--concurrency", "16"], env=env, stderr=subprocess.DEVNULL)
                  for _ in range(workers)]  # fmt: skip
        try:
            while store.run(run_id).state.value not in ("success", "failed"):
                time.sleep(0.1)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait()
        rate = n / span(store.instances(run_id, "noop"))
        store.engine.dispose()
    with database("postgres") as url:
        fl = floor(url, n, processes=workers)
    figure(f"scaleout-{workers}", "postgres", f"1 scheduler + {workers} workers: instances/s", rate, "/s")
    figure(f"scaleout-{workers}", "postgres", f"floor with {workers} processes", fl["per_s"], "/s")
    figure(f"scaleout-{workers}", "postgres", "ratio of the floor", 100 * rate / fl["per_s"], "%")


def big(n: int, window: float) -> None:
    """N mapped instances in one `minimap run` on Postgres, stopped after `window` s if not finished: expansion
    time, instances per second over what ran, peak PSS (a million takes longer than a benchmark session)."""
    with database("postgres") as url:
        wall, _, pss = run_cli(url, "run", "bench/fanout.py", "--conf", json.dumps({"n": n}), limit=window)
        engine = create_engine(url)
        with engine.connect() as c:
            produced = c.execute(text("SELECT ended_at FROM task_instance WHERE task_id = 'produce'")).scalar_one()
            done, first, last = c.execute(text(
                "SELECT count(*), min(started_at), max(ended_at) FROM task_instance "
                "WHERE task_id = 'noop' AND state = 'success'")).one()  # fmt: skip
            collected = c.execute(text("SELECT result FROM task_instance WHERE task_id = 'collect'")).scalar_one()
        engine.dispose()
    key = f"big-{n}"
    figure(key, "postgres", "wall time of `minimap run` (s)" + ("" if collected else ", stopped"), wall, "s")
    figure(key, "postgres", "producer end -> first mapped start (s)", (first - produced).total_seconds(), "s")
    figure(key, "postgres", "mapped instances that ran", done, "")
    figure(key, "postgres", "mapped instances per second", done / (last - first).total_seconds(), "/s")
    figure(key, "postgres", "peak PSS, all minimap processes (MB)", pss / 1e6, "MB")


def breakdown(backend: str, n: int) -> None:
    """Where `minimap run` spends its time (py-spy samples of the driver process, by bucket)."""
    with database(backend) as url:
        driver, child, wall = profile(url, n)
    for name, pct in report(driver, child):
        figure(f"profile-{n}", backend, name[:60], pct, "%")
    figure(f"profile-{n}", backend, "wall time under py-spy (s)", wall, "s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip N = 100,000 and run fewer latency repeats")
    parser.add_argument("--only", choices=["fanout", "latency", "daemon-latency", "scaleout", "profile", "big"],
                        help="run one scenario")  # fmt: skip
    parser.add_argument("--sizes", help="fan-out sizes, comma-separated (default 1000,10000,100000)")
    parser.add_argument("--repeat", type=int, default=1, help="run each fan-out this many times (medians compare)")
    parser.add_argument("--big", type=int, help="also N mapped instances in one run on Postgres (e.g. 1000000)")
    parser.add_argument("--window", type=float, default=600, help="stop the --big run after this many seconds")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    if args.sizes:
        sizes = [int(n) for n in args.sizes.split(",")]
    started = time.time()
    for backend in ("sqlite", "postgres"):
        if args.only in (None, "fanout"):
            for n in sizes:
                for _ in range(args.repeat):
                    fanout(backend, n)
        if args.only in (None, "latency"):
            latency(backend, 8 if args.quick else 20)
        if args.only == "profile":  # not part of the default set: py-spy must be installed
            breakdown(backend, 10_000)
    if args.only in (None, "daemon-latency"):  # Postgres: LISTEN/NOTIFY, then polling alone
        for mode in ("daemons", "daemons-poll"):
            latency("postgres", 8 if args.quick else 20, mode)
    if args.big:
        big(args.big, args.window)
    if args.only in (None, "scaleout"):
        for workers in (1, 2, 4):
            scale_out(workers, 10_000)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": round(time.time() - started),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "command": " ".join(["python", *sys.argv]),
    }
    (out / "latest.json").write_text(json.dumps({"meta": meta, "figures": results}, indent=2, default=str))
    lines = ["| scenario | backend | figure | value |", "|---|---|---|---|"]
    lines += [f"| {r['scenario']} | {r['backend']} | {r['figure']} | {r['value']:,.1f} {r['unit']} |" for r in results]
    (out / "latest.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'latest.json'} and latest.md in {meta['seconds']} s")


if __name__ == "__main__":
    main()
