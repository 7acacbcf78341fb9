"""A fan-out for the read-side tests: they seed its instances' states and times directly."""

from minimap import DAG, task

with DAG("reads", max_active_tasks=8) as dag:

    @task
    def items():
        return []

    @task(map_index_template="{{ item }}", max_active_tis_per_dagrun=2)
    def work(item):
        return item

    @task
    def total(values):
        return len(values)

    total(work.expand(item=items()))
