"""What time schedules cost a scheduler: `python bench/schedules.py` (about a minute).

On SQLite and Postgres (MINIMAP_BENCH_PG, an admin URL that may create databases): 200 recorded @hourly DAGs,
- the pass that creates their 200 due runs,
- a pass with nothing due that asks the database (what every scan would cost without the registry's wake times),
- a pass with nothing due as the registry makes it (each DAG skipped until its next interval ends),
- a catchup backlog of 500 intervals of one DAG (max_active_runs=1000) created in one pass.
Machines here are shared and noisy: compare the ratios measured in one run.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minimap import DAG, task  # noqa: E402
from minimap.execution.registry import Registry, create_due_runs, due_runs  # noqa: E402
from minimap.store import engine as db  # noqa: E402
from minimap.store import schedules  # noqa: E402
from minimap.store.storage import Store  # noqa: E402

PG_ADMIN = os.environ.get("MINIMAP_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)


def spec(dag_id: str, **kwargs: object) -> dict[str, object]:
    with DAG(dag_id, **kwargs) as dag:  # type: ignore[arg-type]
        task(lambda: 1, task_id="t")()
    dag.fileloc = f"/dags/{dag_id}.py"
    return dag.spec().to_dict()


def timed(what: str, backend: str, fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    took = (time.perf_counter() - started) * 1000
    print(f"{backend:8} {what:58} {took:9.1f} ms")
    return took


def scenario(store: Store, backend: str) -> None:
    for n in range(200):
        s = spec(f"d{n}", schedule="@hourly", start_date=NOW - timedelta(days=1), catchup=False)
        schedules.record_file(store, f"/dags/d{n}.py", [s], None)
    rows = schedules.dags(store)
    registry = Registry(store, [])
    registry.parsed = {r.fileloc: 0.0 for r in rows}
    timed("200 DAGs: the pass creating their 200 due runs", backend, lambda: registry.schedule(NOW))
    timed("200 DAGs, nothing due: a pass asking the database", backend,
          lambda: [due_runs(store, r, NOW) for r in schedules.dags(store)])  # fmt: skip
    timed("200 DAGs, nothing due: the registry's pass (wake times)", backend, lambda: registry.schedule(NOW))
    registry.close()
    s = spec("backlog", schedule="@hourly", start_date=NOW - timedelta(hours=500), catchup=True, max_active_runs=1000)
    schedules.record_file(store, "/dags/backlog.py", [s], None)
    (row,) = schedules.dags(store, ["/dags/backlog.py"])
    timed("catchup: 500 intervals of one DAG created in one pass", backend, lambda: create_due_runs(store, row, NOW))
    assert len(store.runs(dag_id="backlog", limit=1000)) == 500


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(db.connect(f"sqlite:///{tmp}/bench.db"))
        scenario(store, "sqlite")
        store.engine.dispose()
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"minimap_bench_sched_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        store = Store(db.connect(make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)))
        scenario(store, "postgres")
        store.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


if __name__ == "__main__":
    main()
