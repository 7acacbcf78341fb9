"""Mapped task group benchmark DAG: `n` (from conf) lanes of three no-op steps, then one task over every lane."""

from minimap import DAG, get_current_context, task, task_group

with DAG("groups", max_map_length=1_000_000) as dag:  # default caps: max_active_tasks 16, parallelism 32

    @task
    def produce() -> list[int]:
        return list(range(get_current_context()["conf"]["n"]))

    @task
    def first(x: int) -> int:
        return x

    @task
    def second(x: int) -> int:
        return x

    @task
    def third(x: int) -> int:
        return x

    @task
    def collect(results: list[int]) -> int:
        return len(results)

    @task_group
    def lane(x: int) -> object:
        return third(second(first(x)))

    collect(lane.expand(x=produce()))
