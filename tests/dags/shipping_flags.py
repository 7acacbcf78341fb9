"""The shipping story, made deterministic: item X fails while `<flags>/fail-X` exists.

Every shipping order sent is appended to `<flags>/ledger`, so tests can count side effects.
"""

import time
from pathlib import Path

from minimap import DAG, get_current_context, task
from minimap.exceptions import TaskFailed


def _flags() -> Path:
    return Path(get_current_context()["conf"]["flags"])


with DAG(dag_id="shipping_flags", max_active_tasks=3, max_active_runs=1) as dag:

    @task
    def fetch_items():
        return [{"item_id": c} for c in "ABCDEFGHIJKL"]

    @task(map_index_template="{{ item.item_id }}")
    def send(item):
        flags = _flags()
        time.sleep(float(get_current_context()["conf"].get("sleep", 0)))
        if (flags / f"fail-{item['item_id']}").exists():
            raise TaskFailed(f"warehouse rejected item {item['item_id']}")
        with open(flags / "ledger", "a") as f:
            f.write(f"sent {item['item_id']} {get_current_context()['idempotency_key']}\n")
        return f"done_{item['item_id']}"

    @task
    def summarize(results):
        with open(_flags() / "ledger", "a") as f:
            f.write("summary " + ",".join(results) + "\n")
        return results

    summarize(send.expand(item=fetch_items()))
