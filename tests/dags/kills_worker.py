"""`n` items; the ones listed in conf `kill` SIGKILL the process that runs them (their worker, or `minimap run`)
on their first `kills` tries: a worker that dies under a task. No retries: a lost worker must not need one."""

import os
import signal
import time
from pathlib import Path

from minimap import DAG, get_current_context, task

with DAG("kills_worker", max_active_tasks=3) as dag:  # retries=0, retry_delay 300 s: the defaults

    @task
    def items():
        return list(range(get_current_context()["conf"]["n"]))

    @task
    def work(i):
        context = get_current_context()
        conf = context["conf"]
        if i in conf.get("kill", []) and context["try_number"] <= conf.get("kills", 1):
            time.sleep(conf.get("before", 0.3))  # let the others start
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(30)  # dies with its worker (PR_SET_PDEATHSIG) long before this ends
        time.sleep(conf.get("sleep", 0.1))
        with open(Path(conf["flags"]) / "ledger", "a") as f:
            f.write(f"work {i} {context['try_number']}\n")
        return i

    @task
    def total(values):
        return sum(values)

    total(work.expand(i=items()))
