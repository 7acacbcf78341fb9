"""Ten items sent one at a time; item i fails while `<flags>/fail-<i>` exists; `send` tolerates
MINIMAP_TEST_TOLERANCE failures (a count, or "N%"). Every attempt and summary is appended to `<flags>/ledger`."""

import os
from pathlib import Path

from minimap import DAG, get_current_context, task
from minimap.exceptions import TaskFailed

RAW = os.environ.get("MINIMAP_TEST_TOLERANCE", "2")
TOLERANCE = RAW if RAW.endswith("%") else int(RAW)


def _note(line: str) -> Path:
    flags = Path(get_current_context()["conf"]["flags"])
    with open(flags / "ledger", "a") as f:
        f.write(line + "\n")
    return flags


with DAG(dag_id="tolerant", max_active_tasks=1) as dag:

    @task
    def items():
        return list(range(10))

    @task(tolerated_failures=TOLERANCE)
    def send(i):
        if (_note(f"send {i}") / f"fail-{i}").exists():
            raise TaskFailed(f"item {i} rejected")
        return i

    @task
    def summarize(sent, failed_map_indexes):
        _note(f"summary {sent} {failed_map_indexes}")
        return {"sent": sent, "failed": failed_map_indexes}

    summarize(send.expand(i=items()))
