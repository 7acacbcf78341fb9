"""`n` (from conf) no-op mapped instances and one task that counts them: a large run to stop and resume."""

from minimap import DAG, get_current_context, task

with DAG("large", max_map_length=1_000_000) as dag:

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
