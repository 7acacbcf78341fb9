"""A mapped task group over nothing: every step is skipped; the consumer follows its trigger rule."""

from minimap import DAG, task, task_group

with DAG(dag_id="lanes_empty") as dag:

    @task
    def nothing():
        return []

    @task
    def step(x):
        return x

    @task
    def summary(values):
        return values

    @task(trigger_rule="all_done")
    def done(values):
        return values

    @task_group
    def lane(x):
        return step(x)

    out = lane.expand(x=nothing())
    summary(out)
    done(out)
