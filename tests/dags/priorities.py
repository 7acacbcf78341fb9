"""Two mapped tasks ready at once: every `high` instance (priority_weight=10) is claimed before any `low` one."""

from minimap import DAG, task

with DAG("priorities", max_active_tasks=16) as dag:

    @task(priority_weight=1, weight_rule="absolute")
    def low(i):
        return i

    @task(priority_weight=10, weight_rule="absolute")
    def high(i):
        return i

    low.expand(i=list(range(4)))
    high.expand(i=list(range(4)))
