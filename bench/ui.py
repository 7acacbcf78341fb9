"""The web page's server time per route: `python bench/ui.py [--backend sqlite|postgres] [--reseed]`.

Seeds (once; kept between invocations) the same data as bench/reads.py -- one run of 100,000 mapped instances (a
task of 90,000 and a task of 10,000) with tries and logs, plus 300 small runs -- in databases of its own, then
requests every page, fragment and JSON route through the ASGI app in this process (Starlette's TestClient: routing,
the guard, the service reads, template rendering; no network) and prints p50 / p95 / max in milliseconds and the
most table rows any response of that route carried.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from starlette.testclient import TestClient  # noqa: E402

from bench.reads import RUN_ID, SMALL, seed  # noqa: E402
from minimap import api, service  # noqa: E402
from minimap.ui.app import create_app  # noqa: E402
from minimap.ui.format import url  # noqa: E402

PG_ADMIN = os.environ.get("MINIMAP_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_NAME = "minimap_bench_ui"
SQLITE = Path(os.environ.get("MINIMAP_BENCH_DIR", "/tmp")) / "minimap_bench_ui.db"
ROW = re.compile(r"<tr[ >]")


def _url(backend: str, reseed: bool) -> str:
    if backend == "sqlite":
        if reseed:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{SQLITE}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{SQLITE}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if reseed:
            c.execute(text(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)"))
        if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": PG_NAME}).first():
            c.execute(text(f"CREATE DATABASE {PG_NAME}"))
    admin.dispose()
    return make_url(PG_ADMIN).set(database=PG_NAME).render_as_string(hide_password=False)


def timed(client: TestClient, name: str, paths: list[str]) -> None:
    took, rows = [], 0
    for path in paths:
        t = time.perf_counter()
        r = client.get(path)
        took.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"{name}: {path} answered {r.status_code}: {r.text[:200]}")
        rows = max(rows, _rows(r))
    took.sort()
    p95 = took[min(len(took) - 1, int(len(took) * 0.95))]
    print(f"{name:<46} p50 {statistics.median(took):7.1f}  p95 {p95:7.1f}  max {took[-1]:7.1f} ms  rows<={rows}",
          flush=True)  # fmt: skip


def _rows(r: Any) -> int:
    """Table rows (without the header) of a page, or items of a JSON list."""
    if r.headers["content-type"].startswith("application/json"):
        body = r.json()
        return len(body) if isinstance(body, list) else len(body.get("items", body.get("tasks", [])))
    return max(0, len(ROW.findall(r.text)) - 1)


def baseline(name: str, call: Callable[[], object], n: int = 20) -> None:
    """The service read behind a route, alone: what the route adds is HTTP, the guard and the template."""
    took = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        took.append((time.perf_counter() - t) * 1000)
    took.sort()
    print(f"{'  (service alone) ' + name:<46} p50 {statistics.median(took):7.1f}  p95 {took[int(n * 0.95)]:7.1f}",
          flush=True)  # fmt: skip


def pages(client: TestClient, task_id: str, n: int, **query: str) -> list[str]:
    """The first `n` pages of a task's list, each reached by following the previous page's next link."""
    found = [url("runs", RUN_ID, "tasks", task_id, **query)]
    for _ in range(n - 1):
        m = re.search(r'<a rel="next" href="([^"]+)"', client.get(found[-1]).text)
        if m is None:
            break
        found.append(m.group(1).replace("&amp;", "&"))
    return found


def measure(client: TestClient) -> None:
    rnd = random.Random(1)
    run, api_run = url("runs", RUN_ID), "/api" + url("runs", RUN_ID)
    timed(client, "GET / (runs, page of 50)", ["/"] * 20)
    timed(client, "GET /api/runs", ["/api/runs"] * 20)
    timed(client, "GET /runs/R (100,000 instances)", [run] * 20)
    store = client.app.state.store  # type: ignore[attr-defined]
    baseline("run_detail", lambda: service.run_detail(store, RUN_ID))
    timed(client, "GET /runs/R?part=tasks (live fragment)", [run + "?part=tasks"] * 20)
    timed(client, "GET /api/runs/R", [api_run] * 20)
    for task_id in ("small", "big"):
        timed(client, f"task {task_id}: pages 1-20 by index", pages(client, task_id, 20))
        baseline(
            f"task_summary + list_instances {task_id}",
            lambda t=task_id: (  # type: ignore[misc]
                service.task_summary(store, RUN_ID, t),
                service.list_instances(store, RUN_ID, t, limit=100),
            ),
        )
        for sort in ("-duration", "-end"):
            timed(client, f"task {task_id}: pages 1-20 sort={sort}", pages(client, task_id, 20, sort=sort))
        timed(client, f"task {task_id}: state=failed pages 1-20", pages(client, task_id, 20, state="failed"))
        needle = [url("runs", RUN_ID, "tasks", task_id, q=f"order-{rnd.randrange(SMALL):06d}") for _ in range(20)]
        timed(client, f"task {task_id}: q=<one label>", needle)
        rows = [p + "&part=rows" for p in needle]
        timed(client, f"task {task_id}: q=<one label> rows fragment", rows)
        timed(client, f"task {task_id}: counts fragment", [url("runs", RUN_ID, "tasks", task_id, part="counts")] * 20)
        api_pages = [f"/api{url('runs', RUN_ID, 'tasks', task_id, 'instances', sort='-duration')}"] * 20
        timed(client, f"api instances {task_id} sort=-duration", api_pages)
    done = [i for i in (rnd.randrange(SMALL) for _ in range(60)) if service.tries(store, RUN_ID, "small", i)][:30]
    timed(client, "instance page small[i]", [url("runs", RUN_ID, "tasks", "small", i) for i in done])
    timed(client, "api instance small[i]", ["/api" + url("runs", RUN_ID, "tasks", "small", i) for i in done])
    timed(client, "log fragment (load more)", [url("runs", RUN_ID, "tasks", "small", i, "tries", 1, "log", before=100)
                                              for i in done])  # fmt: skip
    timed(client, "instance page total (why it waits)", [url("runs", RUN_ID, "tasks", "total", -1)] * 20)
    timed(client, "GET /workers", ["/workers"] * 20)
    for task_id in ("small", "big"):
        failed = url("runs", RUN_ID, "tasks", task_id, "clear", state="failed")
        timed(client, f"clear preview: {task_id} failed (N)", [failed] * 10)
    one = [url("runs", RUN_ID, "tasks", "small", "clear", map_index=i) for i in done[:10]]
    timed(client, "clear preview: small[i] (this index)", one)


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
        with TestClient(create_app(store)) as client:
            measure(client)
        store.engine.dispose()


if __name__ == "__main__":
    main()
