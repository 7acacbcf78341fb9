"""The claim path alone: `n` queued instances claimed 16 at a time and recorded, in one process, no task processes.

    python bench/claims.py [--n 5000] [--backend sqlite|postgres] [--repeat 3]

Prints claimed-and-recorded instances per second (the exchange loop a worker runs, minus running the tasks). It
imports whichever minimap is first on the path, so two versions can be compared in alternation on one machine:
`PYTHONPATH=/path/to/other/checkout python bench/claims.py`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from minimap import api
from minimap.execution.scheduler import Scheduler
from minimap.states import TIState
from minimap.store.rows import Completion, utcnow

PG_ADMIN = os.environ.get("MINIMAP_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DAG = """
import os
from minimap import DAG, task

with DAG("claims", max_map_length=1_000_000) as dag:
    @task
    def noop(x):
        return x

    noop.expand(x=list(range(int(os.environ["MINIMAP_BENCH_N"]))))
"""


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh, empty database."""
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


def measure(backend: str, n: int) -> float:
    """Instances claimed and recorded per second over `n` queued instances."""
    os.environ["MINIMAP_BENCH_N"] = str(n)
    with database(backend) as url, tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "claims.py")
        with open(path, "w") as f:
            f.write(DAG)
        store = api.open_store(url)
        run_id = api.trigger_file(store, path).run_id
        Scheduler(store).tick(run_id)  # the run starts; its instances are queued
        store.analyze()
        worker_id = f"bench:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        store.register_worker(worker_id, "bench", os.getpid())
        done: list[Completion] = []
        count = 0
        start = time.perf_counter()
        while True:
            _, claimed = store.exchange(worker_id, "bench", os.getpid(), done, 16, 32)
            if not claimed:
                break
            count += len(claimed)
            done = [Completion(c, TIState.SUCCESS, utcnow(), result="1") for c in claimed]
        seconds = time.perf_counter() - start
        assert count == n, (count, n)
        store.engine.dispose()
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rates = [measure(args.backend, args.n) for _ in range(args.repeat)]
    each = ", ".join(f"{r:,.0f}" for r in rates)
    print(f"claims {args.backend} n={args.n}: median {statistics.median(rates):,.0f}/s ({each})")


if __name__ == "__main__":
    main()
