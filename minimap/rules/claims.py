"""Which ready instances a worker may claim now without breaking any concurrency cap (pure).

The storage layer calls `pick` while it holds the database's claim lock, so the counts it passes are
exact across every process and host.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from minimap.snapshot import DagSpec


@dataclass(frozen=True)
class Slot:
    """An instance that is running or could run: enough to count it against every cap."""

    run_id: str
    dag_id: str
    task_id: str
    map_index: int
    pool: str = "default_pool"
    pool_slots: int = 1


def pick(
    candidates: Iterable[Slot],
    running: Iterable[Slot],
    specs: Mapping[str, DagSpec],
    want: int,
    parallelism: int,
    pools: Mapping[str, int] | None = None,
) -> list[Slot]:
    """Up to `want` candidates, in order, such that no cap is exceeded once they run.

    Caps: `parallelism` (all instances everywhere), the DAG's `max_active_tasks` (per run),
    a task's `max_active_tis_per_dag` (across runs) and `max_active_tis_per_dagrun` (per run), and the
    slots of each pool (`pools`: name -> slots; the running instances' `pool_slots` are in use; a pool not
    in `pools` has no slots, so its instances wait). `pools=None` caps no pool.
    """
    per_run: Counter[str] = Counter()
    per_task: Counter[tuple[str, str]] = Counter()
    per_run_task: Counter[tuple[str, str]] = Counter()
    total = 0
    in_pool: Counter[str] = Counter()
    for s in running:
        in_pool[s.pool] += s.pool_slots
        per_run[s.run_id] += 1
        per_task[s.dag_id, s.task_id] += 1
        per_run_task[s.run_id, s.task_id] += 1
        total += 1
    chosen: list[Slot] = []
    for c in candidates:
        if len(chosen) >= want or total >= parallelism:
            break
        spec = specs[c.run_id]
        task = spec.tasks[c.task_id]
        if per_run[c.run_id] >= spec.max_active_tasks:
            continue
        if task.max_active_tis_per_dag is not None and per_task[c.dag_id, c.task_id] >= task.max_active_tis_per_dag:
            continue
        limit = task.max_active_tis_per_dagrun
        if limit is not None and per_run_task[c.run_id, c.task_id] >= limit:
            continue
        if pools is not None and in_pool[c.pool] + c.pool_slots > pools.get(c.pool, 0):
            continue
        chosen.append(c)
        in_pool[c.pool] += c.pool_slots
        per_run[c.run_id] += 1
        per_task[c.dag_id, c.task_id] += 1
        per_run_task[c.run_id, c.task_id] += 1
        total += 1
    return chosen
