# The article's proof of concept (../shared/seed/), unchanged except for its four import lines.
# Each item sleeps 5-10 s as in the article, so this takes about half a minute.
from datetime import datetime, timedelta
import random
import time

from minimap import DAG
from minimap import task
from minimap.exceptions import AirflowException
from minimap import XComArg

default_args = {
    "owner": "airflow",
    "retry_delay": timedelta(minutes=1),
}

with DAG(
    dag_id="dynamic_task_mapping_poc",
    start_date=datetime(2025, 1, 13),
    schedule=None,
    catchup=False,
    default_args=default_args,
    tags=["poc"],
    max_active_runs=1,
    max_active_tasks=3,
) as dag:

    @task
    def fetch_items():
        """
        Simulate data preparation in the DAG
        """
        return [
            {"item_id": "A"},
            {"item_id": "B"},
            {"item_id": "C"},
            {"item_id": "D"},
            {"item_id": "E"},
            {"item_id": "F"},
            {"item_id": "G"},
            {"item_id": "H"},
            {"item_id": "I"},
            {"item_id": "J"},
            {"item_id": "K"},
            {"item_id": "L"},
        ]

    @task
    def process_single_item(item: dict) -> str:
        """
        Each item runs as an independent task instance
        """
        item_id = item["item_id"]

        # 20% chance of failure to verify manual retry behavior
        if random.random() < 0.2:
            raise AirflowException(f"Random failure for item {item_id}")

        time.sleep(random.randint(5, 10))
        print(f"Successfully processed item {item_id}")

        return f"done_{item_id}"

    @task
    def summarize(results: XComArg):
        """
        Collect results from all processed items
        """
        print("Finished items:", results)
        return results

    raw_items = fetch_items()
    processed = process_single_item.expand(item=raw_items)
    summarize(processed)
