"""`n` items (from the run's conf), each sleeping `sleep` s, at most five at a time, one retry each."""

import os
import time
from pathlib import Path

from minimap import DAG, get_current_context, task

with DAG("many", max_active_tasks=5, default_args={"retries": 1, "retry_delay": 0}) as dag:

    @task
    def items():
        return list(range(get_current_context()["conf"]["n"]))

    @task
    def work(i):
        conf = get_current_context()["conf"]
        time.sleep(conf.get("sleep", 0))
        with open(Path(conf["flags"]) / "ledger", "a") as f:
            f.write(f"work {i} {os.getppid()}\n")
        return i

    @task
    def total(values):
        return sum(values)

    total(work.expand(i=items()))
