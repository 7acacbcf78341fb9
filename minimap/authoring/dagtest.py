"""`dag.test()`: run a DAG in this process on a throwaway SQLite database, and print each instance's outcome."""

from __future__ import annotations

import json
import os
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minimap.authoring.dag import DAG


def run_test(dag: DAG, conf: dict[str, Any] | None = None) -> Any:
    """Trigger `dag` on a fresh SQLite file, drive the run to its end, print every instance; the finished run."""
    from minimap import api
    from minimap.authoring.loader import pinned

    with tempfile.TemporaryDirectory(prefix="minimap-test-") as folder, pinned(dag):
        store = api.open_store(f"sqlite:///{os.path.join(folder, 'minimap.db')}")
        try:
            for name, slots in _pools(dag).items():  # the throwaway database has only default_pool
                api.set_pool(store, name, slots)
            created = api.trigger(store, dag, conf)
            api.run_to_end(store, created.run_id)
            for row in api.instances(store, created.run_id):
                where = row.task_id + (f"[{row.map_index}]" if row.map_index >= 0 else "")
                shown = "" if row.result is None else " -> " + _short(json.dumps(row.result))
                print(f"{where}: {row.state.value}{shown}" + (f" ({row.error})" if row.error else ""))
            finished = store.run(created.run_id)
            print(f"run {finished.run_id} of DAG {dag.dag_id}: {finished.state.value}")
            return finished
        finally:
            store.engine.dispose()


def _pools(dag: DAG) -> dict[str, int]:
    """The pools the DAG's tasks name, each as large as its largest pool_slots (one instance at a time)."""
    found: dict[str, int] = {}
    for task in dag.spec().tasks.values():
        if task.pool != "default_pool":
            found[task.pool] = max(found.get(task.pool, 1), task.pool_slots)
    return found


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
