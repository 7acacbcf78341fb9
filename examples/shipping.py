"""The shipping story: an order's 12 items, each sent to the warehouse exactly once.

`fetch_items` returns the items; `send_shipping_order` is mapped over them (one instance per item,
at most 3 at a time, 20% of them fail at random); `summarize` runs when every item was sent.
When one fails, re-run just that one:  minimap clear --map-index N
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta

from minimap import DAG, get_current_context, task
from minimap.exceptions import TaskFailed

with DAG(
    dag_id="shipping",
    start_date=datetime(2025, 1, 13),
    schedule=None,
    catchup=False,
    tags=["example"],
    default_args={"owner": "warehouse", "retry_delay": timedelta(seconds=1)},
    max_active_runs=1,
    max_active_tasks=3,
) as dag:

    @task
    def fetch_items() -> list[dict]:
        """The order's items (a real DAG would read them from the order system)."""
        return [{"item_id": item_id} for item_id in "ABCDEFGHIJKL"]

    @task(map_index_template="{{ item.item_id }}")
    def send_shipping_order(item: dict) -> str:
        """Send one item's shipping order; the idempotency key lets the warehouse drop a duplicate."""
        key = get_current_context()["idempotency_key"]
        if random.random() < 0.2:
            raise TaskFailed(f"warehouse rejected item {item['item_id']}")
        time.sleep(random.uniform(0.1, 0.4))
        print(f"sent shipping order for item {item['item_id']} (key {key})")
        return f"done_{item['item_id']}"

    @task
    def summarize(results: list[str]) -> list[str]:
        """Runs once every item was sent; gets the results in map_index order."""
        print("Finished items:", results)
        return results

    summarize(send_shipping_order.expand(item=fetch_items()))
