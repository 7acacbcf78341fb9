"""Mapping over an empty list skips the mapped task, and the skip flows downstream as in Airflow."""

from minimap import DAG, task

with DAG(dag_id="zero_length") as dag:

    @task
    def nothing_today() -> list[int]:
        return []

    @task
    def process(x: int) -> int:
        return x

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @task(trigger_rule="none_failed")
    def notify() -> str:
        return "runs anyway: none_failed lets skips through"

    done = total(process.expand(x=nothing_today()))
    done >> notify()
