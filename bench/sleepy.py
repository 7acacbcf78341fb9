"""Recovery benchmark DAG: `n` (from conf) instances that each sleep `sleep` seconds; no retries (a lost worker
must not need one)."""

import time

from minimap import DAG, get_current_context, task

with DAG("sleepy", max_active_tasks=16) as dag:

    @task
    def items() -> list[int]:
        return list(range(get_current_context()["conf"]["n"]))

    @task
    def nap(i: int) -> int:
        time.sleep(get_current_context()["conf"]["sleep"])
        return i

    nap.expand(i=items())
