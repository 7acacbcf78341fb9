"""Two mapped tasks ready at once: every `z_high` instance (priority_weight=10) is claimed before any `a_low` one,
though without weights `a_low` comes first (run, task, map index order)."""

from minimap import DAG, task

with DAG("priorities", max_active_tasks=16) as dag:

    @task(priority_weight=1, weight_rule="absolute")
    def a_low(i):
        return i

    @task(priority_weight=10, weight_rule="absolute")
    def z_high(i):
        return i

    a_low.expand(i=list(range(4)))
    z_high.expand(i=list(range(4)))
