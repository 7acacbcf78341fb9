"""A table that grows: `python bench/bigtable.py [--rows 10000000] [--keep] [--repeat 3]` (Postgres only).

Measures, on an empty database and on one holding `--rows` finished instances of 10,000 old runs (with one try each
that ran), the fan-out's claim throughput (`minimap run bench/fanout.py`, n = --n, instances/s over the noop
instances' first start to last end, as bench/run.py computes it) and the run page's reads (the service functions
the runs list, the run page, the mapped task's page and the instance page call: p50 / p95 over many calls).
Empty and full are measured alternately, --repeat times each; the medians compare. Then times
`minimap db prune --before DATE --dry-run` and the real prune of --prune instances' runs while a fan-out runs.

The full database is MINIMAP_BENCH_PG's minimap_bench_bigtable; --keep leaves it (seeded) for the next invocation,
which reuses it; without --keep it is dropped at the end. Writes bench/results/bigtable.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import PG_ADMIN, database, figure, results, run_cli, span  # noqa: E402
from minimap import api, service  # noqa: E402
from minimap.service import lanes  # noqa: E402
from minimap.states import TIState  # noqa: E402
from minimap.store.storage import Store  # noqa: E402

FULL = "minimap_bench_bigtable"
RUNS = 10_000  # old runs; each holds rows / RUNS instances (produce, collect and the noop mapped ones)
OLD = timedelta(days=180)  # the oldest run's age; the newest ended 30 days ago


def _full_url(reseed: bool) -> tuple[str, bool]:
    """The full database's URL and whether it already holds the seed."""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if reseed:
            c.execute(text(f"DROP DATABASE IF EXISTS {FULL} WITH (FORCE)"))
        exists = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": FULL}).first() is not None
        if not exists:
            c.execute(text(f"CREATE DATABASE {FULL}"))
    admin.dispose()
    url = make_url(PG_ADMIN).set(database=FULL).render_as_string(hide_password=False)
    if not exists:
        return url, False
    with psycopg.connect(_dsn(url)) as conn:
        row = conn.execute("SELECT to_regclass('bench_seeded') IS NOT NULL").fetchone()  # made when seeding ended
    if not (row and row[0]):
        _drop_full()  # a seed that did not finish: start again
        return _full_url(False)
    return url, True


def _drop_full() -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {FULL} WITH (FORCE)"))
    admin.dispose()


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- seeding -------------------------------------------------------------------------------------------------------

# Old runs' instances, made in the server: noop map indexes 0..per-3, produce and collect at -1. One run in ten
# failed: 4 % of its noop instances failed, 4 % upstream_failed (and its collect), 4 % skipped; a run that
# succeeded has 2 % skipped. Times: run k started at BASE + k * STEP, its instances within its first minute.
_INSTANCES = """
WITH made AS (
INSERT INTO task_instance (run_id, task_id, map_index, dag_id, state, try_number, max_tries, args, result, label,
    error, queued_at, started_at, ended_at, next_retry_at, hostname, pid, worker_id, pool, pool_slots, priority_weight)
SELECT r.run_id, t.task_id, t.map_index, 'fanout', s.state,
    CASE WHEN s.state IN ('success', 'failed') THEN 1 ELSE 0 END, t.max_tries,
    CASE WHEN t.task_id = 'noop' THEN '{"kw": {"x": ' || t.map_index || '}}' END,
    CASE WHEN s.state <> 'success' THEN NULL WHEN t.task_id = 'noop' THEN t.map_index::text
         WHEN t.task_id = 'collect' THEN (%(per)s::int - 2)::text ELSE NULL END,
    NULL, CASE WHEN s.state = 'failed' THEN 'ValueError: bad item' END,
    r.started_at, r.started_at + make_interval(secs => 0.01 * (t.map_index + 2)),
    CASE WHEN s.state IN ('success', 'failed', 'upstream_failed', 'skipped')
         THEN r.started_at + make_interval(secs => 0.01 * (t.map_index + 2) + 0.003) END,
    NULL, CASE WHEN s.state IN ('success', 'failed') THEN 'oldhost' END,
    CASE WHEN s.state IN ('success', 'failed') THEN 4242 END, NULL, t.pool, 1, t.priority_weight
FROM (SELECT k, 'old__' || lpad(k::text, 5, '0') AS run_id,
             %(base)s::timestamp + k * %(step)s::interval AS started_at, k %% 10 = 0 AS bad
      FROM generate_series(%(lo)s::int, %(hi)s::int) AS k) r
CROSS JOIN LATERAL (
    SELECT 'produce' AS task_id, -1 AS map_index, %(p_pool)s AS pool, %(p_weight)s AS priority_weight,
           %(p_tries)s AS max_tries
    UNION ALL SELECT 'noop', i, %(n_pool)s, %(n_weight)s, %(n_tries)s FROM generate_series(0, %(per)s::int - 3) AS i
    UNION ALL SELECT 'collect', -1, %(c_pool)s, %(c_weight)s, %(c_tries)s) t
CROSS JOIN LATERAL (SELECT CASE
    WHEN t.task_id = 'produce' THEN 'success'
    WHEN t.task_id = 'collect' THEN CASE WHEN r.bad THEN 'upstream_failed' ELSE 'success' END
    WHEN r.bad AND t.map_index %% 25 = 0 THEN 'failed'
    WHEN r.bad AND t.map_index %% 25 = 1 THEN 'upstream_failed'
    WHEN r.bad AND t.map_index %% 25 = 2 THEN 'skipped'
    WHEN t.map_index %% 50 = 7 THEN 'skipped'
    ELSE 'success' END AS state) s
RETURNING run_id, task_id, map_index, state, try_number, started_at, ended_at, hostname, pid)
INSERT INTO task_try (run_id, task_id, map_index, try_number, state, started_at, ended_at, hostname, pid,
    error_type, error_message, log, log_truncated)
SELECT run_id, task_id, map_index, 1, state, started_at, ended_at, hostname, pid,
    CASE WHEN state = 'failed' THEN 'ValueError' END, CASE WHEN state = 'failed' THEN 'bad item' END,
    task_id || '[' || map_index || ']: ran' || chr(10), false
FROM made WHERE try_number = 1
"""


def seed(url: str, rows: int) -> float:
    """10,000 old finished runs of bench/fanout.py holding `rows` instances, their tries; VACUUM ANALYZE. Seconds."""
    t0 = time.perf_counter()
    per = max(3, rows // RUNS)
    run_cli(url, "run", "bench/fanout.py", "--conf", json.dumps({"n": 3}))  # a real run: its snapshot and columns
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        template = conn.execute("SELECT run_id, dag_file, snapshot FROM dag_run ORDER BY id LIMIT 1").fetchone()
        assert template is not None
        cols: dict[str, Any] = {"per": per}
        for task_id, prefix in (("produce", "p"), ("noop", "n"), ("collect", "c")):
            found = conn.execute(
                "SELECT pool, priority_weight, max_tries FROM task_instance WHERE run_id = %s AND task_id = %s LIMIT 1",
                (template[0], task_id),
            ).fetchone()
            assert found is not None
            cols.update({f"{prefix}_pool": found[0], f"{prefix}_weight": found[1], f"{prefix}_tries": found[2]})
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        base, step = now - OLD, (OLD - timedelta(days=30)) / RUNS
        with conn.cursor().copy(
            "COPY dag_run (run_id, dag_id, state, dag_file, snapshot, conf, created_at, started_at, ended_at, "
            "run_type) FROM STDIN"
        ) as copy:
            for k in range(RUNS):
                start = base + k * step
                copy.write_row((f"old__{k:05d}", "fanout", "failed" if k % 10 == 0 else "success", template[1],
                                template[2], json.dumps({"n": per - 2}), start, start,
                                start + timedelta(seconds=0.01 * per + 1), "manual"))  # fmt: skip
        # Build the indexes once after the load, not row by row: drop them (their definitions kept), load with the
        # foreign key triggers off (the rows are consistent by construction), create them again.
        defs: list[str] = []
        for table in ("task_instance", "task_try"):
            for name, condef in conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
                "AND contype = 'p'",
                (table,),
            ).fetchall():
                defs.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} {condef}")
                conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            for name, indexdef in conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (table,)
            ).fetchall():
                defs.append(indexdef)
                conn.execute(f"DROP INDEX {name}")
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        chunk = 500
        for lo in range(0, RUNS, chunk):
            hi = min(RUNS, lo + chunk) - 1
            conn.execute(_INSTANCES, {**cols, "base": base, "step": step, "lo": lo, "hi": hi})
            print(f"  seeded runs {lo}..{hi} ({time.perf_counter() - t0:.0f} s)", flush=True)
        conn.execute("SET session_replication_role = DEFAULT")
        for d in defs:
            t = time.perf_counter()
            conn.execute(d)
            print(f"  {d[:110]} ({time.perf_counter() - t:.0f} s)", flush=True)
        conn.execute("VACUUM ANALYZE")
        conn.execute("CREATE TABLE bench_seeded (rows bigint)")
    return time.perf_counter() - t0


def sizes(url: str) -> dict[str, int]:
    with psycopg.connect(_dsn(url)) as conn:
        out = {}
        for table in ("dag_run", "task_instance", "task_try"):
            row = conn.execute(
                f"SELECT pg_total_relation_size('{table}'), pg_relation_size('{table}'), (SELECT count(*) FROM {table})"
            ).fetchone()
            assert row is not None
            out[f"{table} total bytes"], out[f"{table} heap bytes"], out[f"{table} rows"] = row
        return out


# --- measuring -----------------------------------------------------------------------------------------------------


def fan_out(url: str, n: int) -> tuple[float, float, str]:
    """`minimap run bench/fanout.py` with n: mapped instances per second, the command's wall time, the run's id."""
    wall, _, _ = run_cli(url, "run", "bench/fanout.py", "--conf", json.dumps({"n": n}))
    store = api.open_store(url)
    try:
        run_id = store.latest_run("fanout").run_id
        mapped = store.instances(run_id, "noop")
        assert len(mapped) == n and all(i.state is TIState.SUCCESS for i in mapped)
        return n / span(mapped), wall, run_id
    finally:
        store.engine.dispose()


def _time(calls: list[Callable[[], Any]]) -> tuple[float, float]:
    took = []
    for call in calls:
        t = time.perf_counter()
        call()
        took.append((time.perf_counter() - t) * 1000)
    took.sort()
    return statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.95))]


def reads(url: str, run_id: str, n: int, calls: int) -> dict[str, tuple[float, float]]:
    """p50 / p95 ms of what each page calls, for the run `run_id` of bench/fanout.py."""
    store = api.open_store(url)
    s: Store = store
    page2 = service.list_instances(s, run_id, "noop", limit=100).next_after
    out = {
        "runs list, newest run (list_runs limit=1)": [lambda: service.list_runs(s, limit=1)],
        "runs list, page of 50 (empty db holds 1 run)": [lambda: service.list_runs(s, limit=50)],
        "runs list of the DAG (list_runs dag_id=fanout)": [lambda: service.list_runs(s, dag_id="fanout", limit=50)],
        "run page (run_detail + mapped_groups)": [
            lambda: (service.run_detail(s, run_id), lanes.mapped_groups(s, run_id))
        ],
        "task page: get_run + task_summary(noop)": [
            lambda: (service.get_run(s, run_id), service.task_summary(s, run_id, "noop"))
        ],
        "task page: list_instances noop, page 1 by index": [
            lambda: service.list_instances(s, run_id, "noop", limit=100)
        ],
        "task page: list_instances noop, page 2 by index": [
            lambda: service.list_instances(s, run_id, "noop", after=page2, limit=100)
        ],
        "task page: list_instances noop, sort=-end": [
            lambda: service.list_instances(s, run_id, "noop", sort="-end", limit=100)
        ],
        "task page: list_instances noop, state=failed": [
            lambda: service.list_instances(s, run_id, "noop", states=[TIState.FAILED], limit=100)
        ],
        "instance page: instance_detail noop[i]": [
            lambda i=i: service.instance_detail(s, run_id, "noop", i) for i in range(0, n, max(1, n // 10))
        ],
    }
    try:
        return {name: _time((fs * calls)[:calls] if len(fs) < calls else fs) for name, fs in out.items()}
    finally:
        store.engine.dispose()


def measure(url: str, n: int, calls: int) -> dict[str, float]:
    rate, wall, run_id = fan_out(url, n)
    got = {"fan-out instances/s": rate, "fan-out wall time of `minimap run` (s)": wall}
    for name, (p50, p95) in reads(url, run_id, n, calls).items():
        got[f"{name} p50 ms"], got[f"{name} p95 ms"] = p50, p95
    return got


def prune_under_load(url: str, before: datetime, n: int) -> dict[str, float]:
    """`minimap db prune --before` (dry, then real) while a fan-out of n runs: timings and the run's rates."""
    t = time.perf_counter()
    run_cli(url, "db", "prune", "--before", before.isoformat(), "--dry-run")
    dry = time.perf_counter() - t
    env = {**os.environ, "MINIMAP_DATABASE_URL": url}
    fan = subprocess.Popen([sys.executable, "-m", "minimap", "run", "bench/fanout.py", "--conf", json.dumps({"n": n})],
                           env=env, cwd=HERE.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(5)  # the fan-out is expanded and running
    p_start = datetime.now(timezone.utc)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "minimap", "db", "prune", "--before", before.isoformat()], env=env,
                         cwd=HERE.parent, capture_output=True, text=True)  # fmt: skip
    real = time.perf_counter() - t
    p_end = datetime.now(timezone.utc)
    if out.returncode:
        raise SystemExit(f"prune failed: {out.stderr[-2000:]}")
    print("  " + out.stdout.strip().splitlines()[-1], flush=True)
    fan.wait()
    if fan.returncode:
        raise SystemExit(f"fan-out under prune failed: {fan.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    store = api.open_store(url)
    try:
        mapped = store.instances(store.latest_run("fanout").run_id, "noop")
    finally:
        store.engine.dispose()
    ends = [i.ended_at for i in mapped if i.ended_at is not None]
    until = min(p_end, max(ends))  # the fan-out may end before the prune does
    during = [e for e in ends if p_start <= e <= until]
    after = [e for e in ends if e > p_end]
    got = {
        "prune --dry-run (s)": dry,
        "prune (s)": real,
        "fan-out instances/s, whole run": n / span(mapped),
    }
    if until > p_start:
        got["fan-out instances/s while prune ran"] = len(during) / (until - p_start).total_seconds()
    if len(after) > 100:
        got["fan-out instances/s after prune ended"] = len(after) / (max(after) - p_end).total_seconds()
    return got


def _prune_date(url: str, runs: int) -> datetime:
    """A date before which exactly the `runs` oldest old runs ended."""
    with psycopg.connect(_dsn(url)) as conn:
        row = conn.execute("SELECT ended_at FROM dag_run WHERE left(run_id, 5) = 'old__' ORDER BY ended_at "
                           "OFFSET %s LIMIT 1", (runs,)).fetchone()  # fmt: skip
    assert row is not None
    return row[0].replace(tzinfo=timezone.utc)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000, help="old finished instances to seed")
    p.add_argument("--keep", action="store_true", help="keep the seeded database (and reuse a kept one)")
    p.add_argument("--reseed", action="store_true", help="seed again even if a kept database exists")
    p.add_argument("--repeat", type=int, default=3, help="measurements per database, alternated; medians compare")
    p.add_argument("--n", type=int, default=10_000, help="mapped instances of the measured fan-out")
    p.add_argument("--calls", type=int, default=40, help="calls per read function per measurement")
    p.add_argument("--prune", type=int, default=1_000_000, help="old instances to prune under load (0: skip)")
    args = p.parse_args()
    started = time.time()
    url, seeded = _full_url(args.reseed)
    meta: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(["python", *sys.argv])}
    try:
        if not seeded:
            took = seed(url, args.rows)
            figure("bigtable", "postgres", f"seed {args.rows:,} old instances (s)", took, "s")
        size = sizes(url)
        meta["sizes"] = size
        for k, v in size.items():
            figure("bigtable", "postgres", k + (" (MB)" if "bytes" in k else ""),
                   v / 1e6 if "bytes" in k else v, "MB" if "bytes" in k else "")  # fmt: skip
        empty: list[dict[str, float]] = []
        full: list[dict[str, float]] = []
        for r in range(args.repeat):
            with database("postgres") as e:
                empty.append(measure(e, args.n, args.calls))
            full.append(measure(url, args.n, args.calls))
            print(f"  round {r + 1}: fan-out {empty[-1]['fan-out instances/s']:.0f}/s empty, "
                  f"{full[-1]['fan-out instances/s']:.0f}/s full", flush=True)  # fmt: skip
        for name in empty[0] if empty else []:
            e, f = statistics.median(m[name] for m in empty), statistics.median(m[name] for m in full)
            ratio = f / e if e else float("nan")
            figure("bigtable", "postgres", f"{name}: empty", e, "", rounds=[m[name] for m in empty])
            figure("bigtable", "postgres", f"{name}: full", f, "", rounds=[m[name] for m in full])
            figure("bigtable", "postgres", f"{name}: full / empty", 100 * ratio, "%")
        if args.prune:
            before = _prune_date(url, args.prune // max(3, args.rows // RUNS))
            for name, value in prune_under_load(url, before, 4 * args.n).items():
                figure("prune", "postgres", name, value, "")
            figure("prune", "postgres", "instances pruned (requested)", args.prune, "")
    finally:
        if not args.keep:
            _drop_full()
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    meta["seconds"] = round(time.time() - started)
    (out / "bigtable.json").write_text(json.dumps({"meta": meta, "figures": results}, indent=2, default=str))
    print(f"wrote {out / 'bigtable.json'} in {meta['seconds']} s")


if __name__ == "__main__":
    main()
