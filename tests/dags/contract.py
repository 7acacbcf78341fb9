"""DAGs for the store's contract tests.

wide: 60 items mapped over a literal list, no cap in the way, one retry with no delay.
resize: `fetch` returns range(n) with n read from `<flags>/n`, so clearing it re-expands `square` to another length.
"""

from pathlib import Path

from minimap import DAG, get_current_context, task

with DAG("wide", max_active_tasks=1000, default_args={"retries": 1, "retry_delay": 0}) as wide:

    @task
    def work(i):
        return i

    work.expand(i=list(range(60)))


with DAG("resize") as resize:

    @task
    def fetch():
        return list(range(int((Path(get_current_context()["conf"]["flags"]) / "n").read_text())))

    @task
    def square(x):
        return x * x

    @task
    def collect(values):
        return values

    collect(square.expand(x=fetch()))
