"""Fan-out benchmark DAG: `n` (from conf) no-op instances, then one task that counts their results."""

import os

from minimap import DAG, get_current_context, task

# Default caps (max_active_tasks 16, parallelism 32) unless BENCH_MAX_ACTIVE_TASKS says otherwise: the scale-out
# scenario raises the run's cap so that each added worker adds slots instead of splitting the same 16.
CAP = int(os.environ.get("BENCH_MAX_ACTIVE_TASKS", "16"))

with DAG("fanout", max_map_length=1_000_000, max_active_tasks=CAP) as dag:

    @task
    def produce() -> list[int]:
        return list(range(get_current_context()["conf"]["n"]))

    @task
    def noop(x: int) -> int:
        return x

    @task
    def collect(results: list[int]) -> int:
        return len(results)

    collect(noop.expand(x=produce()))
