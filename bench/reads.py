"""The read side's latency: `python bench/reads.py [--backend sqlite|postgres] [--reseed]`.

Seeds (once; kept between invocations) a run of 100,000 mapped instances -- a task of 90,000 and a task of 10,000 --
with tries and logs, plus 300 small runs, then times every function of minimap.service.reads the CLI and the web
page call (many calls each, with varied arguments) and prints p50 / p95 / max in milliseconds. Server time only:
what the functions take, without HTTP (bench/ui.py measures the routes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from minimap import DAG, api, service, task  # noqa: E402
from minimap.states import TIState  # noqa: E402
from minimap.store.storage import Store  # noqa: E402
from minimap.store.tables import task_try  # noqa: E402

PG_ADMIN = os.environ.get("MINIMAP_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_NAME = "minimap_bench_reads"
SQLITE = Path(os.environ.get("MINIMAP_BENCH_DIR", "/tmp")) / "minimap_bench_reads.db"
BIG, SMALL = 90_000, 10_000
RUN_ID = "bench__fanout"


def _dag() -> DAG:
    with DAG("fanout", max_active_tasks=16) as dag:

        @task
        def items() -> list[int]:
            return []

        @task(map_index_template="{{ i }}", max_active_tis_per_dagrun=8)
        def big(i: int) -> int:
            return i

        @task(map_index_template="{{ i }}")
        def small(i: int) -> int:
            return i

        @task
        def total(a: list[int], b: list[int]) -> int:
            return 0

        xs = items()
        total(big.expand(i=xs), small.expand(i=xs))
    return dag


def _url(backend: str, reseed: bool) -> str:
    if backend == "sqlite":
        if reseed and SQLITE.exists():
            SQLITE.unlink()
        return f"sqlite:///{SQLITE}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if reseed:
            c.execute(text(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)"))
        if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": PG_NAME}).first():
            c.execute(text(f"CREATE DATABASE {PG_NAME}"))
    admin.dispose()
    return make_url(PG_ADMIN).set(database=PG_NAME).render_as_string(hide_password=False)


STATES = [TIState.SUCCESS] * 85 + [TIState.FAILED] * 5 + [TIState.RUNNING] * 3 + [TIState.QUEUED] * 5
STATES += [TIState.UP_FOR_RETRY] * 2


def _instances(task_id: str, n: int, t0: datetime, rnd: random.Random) -> tuple[list[dict[str, Any]], list[dict]]:
    rows, tries = [], []
    for i in range(n):
        state = rnd.choice(STATES)
        start = t0 + timedelta(seconds=rnd.uniform(0, 3600)) if state is not TIState.QUEUED else None
        took = rnd.expovariate(1 / 5.0)
        end = start + timedelta(seconds=took) if start and state not in (TIState.RUNNING,) else None
        row = {
            "task_id": task_id, "map_index": i, "state": state.value, "try_number": 0 if start is None else 1,
            "max_tries": 2, "args": json.dumps({"kw": {"i": i}}), "label": f"order-{i:06d}-{rnd.choice('abcdef')}",
            "result": json.dumps(i) if state is TIState.SUCCESS else None,
            "error": "ValueError: bad item" if state is TIState.FAILED else None,
            "queued_at": t0, "started_at": start, "ended_at": end, "hostname": "bench" if start else None,
            "pid": 1 if start else None, "worker_id": "bench:1:w" if state is TIState.RUNNING else None,
        }  # fmt: skip
        rows.append(row)
        if end is not None:
            log = "".join(f"line {k} of item {i}\n" for k in range(rnd.randint(1, 40)))
            tries.append({
                "run_id": RUN_ID, "task_id": task_id, "map_index": i, "try_number": 1, "state": state.value,
                "started_at": start, "ended_at": end, "hostname": "bench", "pid": 1, "error_type": None,
                "error_message": None, "log": log, "log_truncated": False,
            })  # fmt: skip
    return rows, tries


def seed(store: Store) -> None:
    dag = _dag()
    snapshot = json.dumps(dag.snapshot())
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    rnd = random.Random(7)
    for k in range(300):
        store.create_run(f"bench__small_{k:04d}", "fanout", __file__, snapshot, {}, [
            {"task_id": t, "map_index": -1, "state": TIState.SUCCESS.value, "max_tries": 1, "args": None}
            for t in ("items", "big", "small", "total")
        ])  # fmt: skip
    big, big_tries = _instances("big", BIG, t0, rnd)
    small, small_tries = _instances("small", SMALL, t0, rnd)
    head = [
        {"task_id": "items", "map_index": -1, "state": "success", "max_tries": 1, "try_number": 1},
        {"task_id": "total", "map_index": -1, "state": "scheduled", "max_tries": 1, "try_number": 0},
    ]
    keys = set().union(*(r.keys() for r in big))
    rows = [{k: r.get(k) for k in keys} for r in head + big + small]
    store.create_run(RUN_ID, "fanout", __file__, snapshot, {}, rows)
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE dag_run SET state = 'running', started_at = created_at WHERE run_id = :r"), {"r": RUN_ID}
        )
        everything = big_tries + small_tries
        for start in range(0, len(everything), 5000):
            conn.execute(insert(task_try), everything[start : start + 5000])
    if store.is_postgres:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
    else:
        with store.engine.begin() as c:
            c.execute(text("ANALYZE"))


def timed(name: str, calls: list[Callable[[], Any]]) -> None:
    took = []
    for call in calls:
        t = time.perf_counter()
        call()
        took.append((time.perf_counter() - t) * 1000)
    took.sort()
    p95 = took[min(len(took) - 1, int(len(took) * 0.95))]
    print(f"{name:<44} p50 {statistics.median(took):7.1f}  p95 {p95:7.1f}  max {took[-1]:7.1f} ms", flush=True)


def pages(store: Store, task_id: str, sort: str, n: int, **kw: Any) -> list[Callable[[], Any]]:
    """Calls that each fetch one page, following the cursor from page 1 onwards."""
    cursors: list[str | None] = [None]
    for _ in range(n - 1):
        nxt = service.list_instances(store, RUN_ID, task_id, sort=sort, after=cursors[-1], **kw).next_after
        if nxt is None:
            break
        cursors.append(nxt)
    return [lambda c=c: service.list_instances(store, RUN_ID, task_id, sort=sort, after=c, **kw) for c in cursors]


def measure(store: Store) -> None:
    rnd = random.Random(1)
    timed("list_runs (pages of 50)", [lambda: service.list_runs(store)] * 20)
    timed("run_detail (100,000 instances)", [lambda: service.run_detail(store, RUN_ID)] * 20)
    for task_id in ("small", "big"):
        for sort in ("index", "-index", "end", "-end", "duration", "-duration"):
            timed(f"list_instances {task_id} sort={sort}", pages(store, task_id, sort, 20))
        failed = [TIState.FAILED]
        timed(f"list_instances {task_id} state=failed", pages(store, task_id, "index", 20, states=failed))
        timed(f"list_instances {task_id} failed -duration", pages(store, task_id, "-duration", 20, states=failed))
        hit = f"order-{rnd.randrange(SMALL):06d}"
        timed(f"list_instances {task_id} q=<one label>", [lambda h=hit, t=task_id: service.list_instances(
            store, RUN_ID, t, q=h)] * 20)  # fmt: skip
        timed(f"list_instances {task_id} q=-a (1 in 6)", pages(store, task_id, "index", 20, q="-A"))
    indexes = [rnd.randrange(SMALL) for _ in range(40)]
    timed("instance_detail small[i]", [lambda i=i: service.instance_detail(store, RUN_ID, "small", i) for i in indexes])
    timed("instance_detail total (scheduled)", [lambda: service.instance_detail(store, RUN_ID, "total", -1)] * 20)
    done = [i for i in indexes if service.instance_detail(store, RUN_ID, "small", i).tries]
    timed("try_log tail", [lambda i=i: service.try_log(store, RUN_ID, "small", i, 1, size=200) for i in done])
    timed("list_workers", [lambda: service.list_workers(store)] * 20)
    timed("instances (every one of small, for the CLI)", [lambda: service.instances(store, RUN_ID, "small")] * 5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["sqlite", "postgres"], action="append")
    p.add_argument("--reseed", action="store_true")
    args = p.parse_args()
    for backend in args.backend or ["sqlite", "postgres"]:
        store = api.open_store(_url(backend, args.reseed))
        try:
            store.run(RUN_ID)
        except api.NotFoundError:
            t = time.perf_counter()
            seed(store)
            print(f"{backend}: seeded in {time.perf_counter() - t:.0f} s", flush=True)
        print(f"--- {backend}")
        measure(store)
        store.engine.dispose()


if __name__ == "__main__":
    main()
