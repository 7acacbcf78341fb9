"""Seed a fan-out run straight through the store (no task runs), for the web page's tests and bench/ui.py.

`seed(store, run_id, n)` writes a run of the `fanout_ui` DAG -- items -> work (mapped, n instances) -> total --
whose instances succeeded one second each, labelled order-00000..., except those named: `slow` took a minute,
`failed` failed, `labels` overrides some labels. Written as the store writes runs (Store.create_run, in batches).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from minimap import DAG, task
from minimap.store.storage import Store

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def fanout_dag() -> DAG:
    with DAG("fanout_ui", max_active_tasks=16) as dag:

        @task
        def items() -> list[int]:
            return []

        @task(map_index_template="{{ i }}")
        def work(i: int) -> int:
            return i

        @task
        def total(values: list[int]) -> int:
            return len(values)

        total(work.expand(i=items()))
    return dag


def label(i: int) -> str:
    return f"order-{i:05d}"


def seed(
    store: Store,
    run_id: str,
    n: int,
    *,
    slow: int | None = None,
    failed: Collection[int] = (),
    labels: Mapping[int, str] | None = None,
) -> None:
    """A run of `n` mapped instances, all finished (see the module's docstring)."""
    snapshot = json.dumps(fanout_dag().snapshot())
    base = {"args": None, "label": None, "result": None, "error": None, "started_at": None, "ended_at": None,
            "hostname": None, "pid": None, "max_tries": 1, "try_number": 1}  # fmt: skip
    rows: list[dict[str, Any]] = [
        {**base, "task_id": "items", "map_index": -1, "state": "success", "started_at": T0, "ended_at": T0},
        {**base, "task_id": "total", "map_index": -1, "state": "scheduled", "try_number": 0},
    ]
    for i in range(n):
        start = T0 + timedelta(milliseconds=10 * i)
        took = timedelta(seconds=60 if i == slow else 1)
        bad = i in failed
        rows.append({
            **base, "task_id": "work", "map_index": i, "state": "failed" if bad else "success",
            "args": json.dumps({"kw": {"i": i}}), "label": (labels or {}).get(i, label(i)),
            "result": None if bad else json.dumps(i), "error": "ValueError: bad item" if bad else None,
            "started_at": start, "ended_at": start + took, "hostname": "seed", "pid": 1,
        })  # fmt: skip
    store.create_run(run_id, "fanout_ui", __file__, snapshot, {}, rows)
