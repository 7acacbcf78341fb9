"""Twelve slow items with one retry each, for killing a run in the middle and resuming it."""

import time
from pathlib import Path

from minimap import DAG, get_current_context, task

with DAG("slow_items", max_active_tasks=3, default_args={"retries": 1, "retry_delay": 0}) as dag:

    @task(map_index_template="item {{ i }}")
    def work(i):
        time.sleep(0.4)
        with open(Path(get_current_context()["conf"]["flags"]) / "ledger", "a") as f:
            f.write(f"work {i}\n")
        return i

    @task
    def total(values):
        return sum(values)

    total(work.expand(i=list(range(12))))
