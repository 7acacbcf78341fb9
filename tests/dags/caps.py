"""Twelve instances that each sleep; at most three may run at once."""

import time

from minimap import DAG, task

with DAG("caps", max_active_tasks=3) as dag:

    @task
    def sleepy(i):
        time.sleep(0.3)
        return i

    sleepy.expand(i=list(range(12)))
