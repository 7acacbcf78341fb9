"""The store's hot path alone, in one process: claim + record through `Store.exchange`, no task processes.

    python bench/store_path.py [--tree DIR] [--n 5000] [--batch 32]

Measures the wall-clock rate and this process's CPU time per instance (the Python cost, much less sensitive
to a loaded machine than the wall clock) of the claim path (claims, completions, the spec cache), without the
noise of forked task processes: a run of N no-op instances is queued by one scheduling pass, then one loop
records the previous batch's ends and claims the next batch in each transaction until every instance is done.
`--tree DIR` imports minimap from DIR, to compare two checkouts back to back on one machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(url: str, n: int, batch: int) -> tuple[float, float]:
    """Instances per second through exchange() on `url`, and this process's CPU microseconds per instance."""
    from minimap import DAG, api, task
    from minimap.execution.scheduler import Scheduler
    from minimap.states import TIState
    from minimap.store.rows import Completion, utcnow

    with DAG(f"store_path_{uuid.uuid4().hex[:6]}", max_active_tasks=n) as dag:

        @task
        def work(i: int) -> int:
            return i

        work.expand(i=list(range(n)))
    dag.fileloc = __file__
    store = api.open_store(url)
    run_id = api.trigger(store, dag).run_id
    Scheduler(store).tick(run_id)
    host, pid = socket.gethostname(), os.getpid()
    worker_id = f"{host}:{pid}:bench"
    store.register_worker(worker_id, host, pid)
    done: list[Completion] = []
    finished = 0
    started, cpu = time.perf_counter(), time.process_time()
    while finished < n:
        recorded, claimed = store.exchange(worker_id, host, pid, done, batch, n, run_id)
        finished += recorded
        done = [Completion(c, TIState.SUCCESS, utcnow(), result=str(c.map_index)) for c in claimed]
        if not claimed and not done and finished < n:
            raise SystemExit(f"stuck at {finished} of {n}")
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.engine.dispose()
    return n / took, cpu / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", default=str(HERE.parent), help="the checkout whose minimap to import")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    sys.path.insert(0, args.tree)
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            rate, cpu = measure(f"sqlite:///{d}/bench.db", args.n, args.batch)
    else:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        admin_url = os.environ.get("MINIMAP_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
        name = f"minimap_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f"CREATE DATABASE {name}"))
        try:
            url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
            rate, cpu = measure(url, args.n, args.batch)
        finally:
            with admin.connect() as c:
                c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            admin.dispose()
    import minimap

    tree = Path(minimap.__file__).parent.parent
    print(f"{args.backend:<8} {tree} n={args.n} batch={args.batch}: {rate:,.0f} /s, {cpu:,.0f} µs CPU per instance")


if __name__ == "__main__":
    main()
