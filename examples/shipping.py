"""The shipping story: an order's 12 items, each sent to the warehouse exactly once.

`fetch_items` returns the items; `send_shipping_order` is mapped over them (one instance per item, at most 3 at a
time). The warehouse is flaky: on a first try about one order in five times out, so a run usually ends `failed`
with a few orders to retry, and `summarize` waits (`upstream_failed`). Re-send exactly those:

    minimap clear --task send_shipping_order --state failed

The warehouse has recovered by then, the cleared orders go through, `summarize` runs by itself, and its report
counts the orders the warehouse received: one per item, none twice.
"""

from __future__ import annotations

import json
import os
import random
import time
from datetime import datetime, timedelta
from pathlib import Path

from minimap import DAG, get_current_context, task
from minimap.exceptions import TaskFailed


def warehouse(run_id: str) -> Path:
    """The warehouse's inbox for this run: one JSON line per shipping order it received."""
    home = Path(os.environ.get("MINIMAP_HOME") or Path.home() / ".minimap")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return home / "warehouse" / f"{safe}.jsonl"


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
        context = get_current_context()
        if context["try_number"] == 1 and random.random() < 0.2:
            raise TaskFailed(f"warehouse timed out on item {item['item_id']}")
        time.sleep(random.uniform(0.1, 0.4))
        inbox = warehouse(context["run_id"])
        inbox.parent.mkdir(parents=True, exist_ok=True)
        with inbox.open("a") as f:
            f.write(json.dumps({"item_id": item["item_id"], "key": context["idempotency_key"]}) + "\n")
        print(f"sent shipping order for item {item['item_id']} (key {context['idempotency_key']})")
        return f"done_{item['item_id']}"

    @task
    def summarize(results: list[str]) -> dict:
        """Runs once every item was sent; gets the results in map_index order."""
        orders = [json.loads(line) for line in warehouse(get_current_context()["run_id"]).read_text().splitlines()]
        sent = sorted(o["item_id"] for o in orders)
        report = {
            "items": len(results),
            "orders": len(orders),
            "sent_twice": sorted({i for i in sent if sent.count(i) > 1}),
        }
        print("Finished items:", results)
        twice = ", ".join(report["sent_twice"]) or "none"
        print(f"the warehouse received {report['orders']} orders for {report['items']} items; sent twice: {twice}")
        return report

    summarize(send_shipping_order.expand(item=fetch_items()))
