"""The web page's story: twelve orders, those whose `<flags>/fail-<index>` file exists fail (the tests use 3 and 7).

Every order sent is appended to `<flags>/ledger`, so a test can prove that no succeeded index ran again.
"""

from pathlib import Path

from minimap import DAG, get_current_context, task
from minimap.exceptions import TaskFailed


def _flags() -> Path:
    return Path(get_current_context()["conf"]["flags"])


with DAG(dag_id="ui_story", max_active_tasks=4) as dag:

    @task
    def orders():
        return [{"n": n, "name": f"order-{n:02d}"} for n in range(12)]

    @task(map_index_template="{{ order.name }}")
    def send(order):
        print(f"sending {order['name']} to the warehouse")
        for k in range(get_current_context()["conf"].get("noise", 0)):  # a long log, for "load more"
            print(f"{order['name']} line {k:05d}")
        if (_flags() / f"fail-{order['n']}").exists():
            raise TaskFailed(f"warehouse rejected {order['name']}")
        with open(_flags() / "ledger", "a") as f:
            f.write(f"sent {order['n']}\n")
        return f"shipped {order['name']}"

    @task
    def summarize(results):
        with open(_flags() / "ledger", "a") as f:
            f.write(f"summary {len(results)}\n")
        return len(results)

    summarize(send.expand(order=orders()))
