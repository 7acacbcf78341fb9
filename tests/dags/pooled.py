"""Two DAGs whose mapped tasks share pool "db" (create it first): `n` items each (conf), each sleeping `sleep` s."""

import time

from minimap import DAG, get_current_context, task


@task(pool="db")
def work(i):
    time.sleep(get_current_context()["conf"].get("sleep", 0.2))
    return i


for dag_id in ("pooled_a", "pooled_b"):
    with DAG(dag_id, max_active_tasks=16) as dag:
        work.expand(i=list(range(6)))
    globals()[dag_id] = dag
