"""Fan-out benchmark DAG: `n` (from conf) no-op instances, then one task that counts their results."""

from minimap import DAG, get_current_context, task

with DAG("fanout", max_map_length=1_000_000) as dag:  # default caps: max_active_tasks 16, parallelism 32

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
