"""Latency benchmark DAGs: a small fan-out (downstream start after the last mapped end), and sleeps under a cap."""

import time

from minimap import DAG, task

with DAG("handoff") as handoff:

    @task
    def noop(x: int) -> int:
        return x

    @task
    def collect(results: list[int]) -> int:
        return len(results)

    collect(noop.expand(x=list(range(50))))


with DAG("slots", max_active_tasks=3) as slots:

    @task
    def sleep(i: int) -> int:
        time.sleep(0.2)
        return i

    sleep.expand(i=list(range(12)))
