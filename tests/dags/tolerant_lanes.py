"""Ten items, each a lane of the mapped group `deliver` (check -> send), one lane at a time; lane i's `send`
fails while `<flags>/fail-<i>` exists. The group tolerates MINIMAP_TEST_TOLERANCE failed lanes (a count, or
"N%"); LANES_CAP sets max_active_lanes (default 1, 0: no cap). Every step run and the report are appended to
`<flags>/ledger`."""

import os
from pathlib import Path

from minimap import DAG, get_current_context, task, task_group
from minimap.exceptions import TaskFailed

RAW = os.environ.get("MINIMAP_TEST_TOLERANCE", "2")
TOLERANCE = RAW if RAW.endswith("%") else int(RAW)


def _note(line: str) -> Path:
    flags = Path(get_current_context()["conf"]["flags"])
    with open(flags / "ledger", "a") as f:
        f.write(line + "\n")
    return flags


with DAG(dag_id="tolerant_lanes", max_active_tasks=1) as dag:

    @task
    def items():
        return list(range(10))

    @task
    def check(i):
        _note(f"check {i}")
        return i

    @task
    def send(i):
        if (_note(f"send {i}") / f"fail-{i}").exists():
            raise TaskFailed(f"item {i} rejected")
        return i

    @task
    def report(sent, failed_map_indexes):
        _note(f"report {sent} {failed_map_indexes}")
        return {"sent": sent, "failed": failed_map_indexes}

    @task_group(tolerated_failures=TOLERANCE, max_active_lanes=int(os.environ.get("LANES_CAP", "1")) or None)
    def deliver(i):
        return send(check(i))

    report(deliver.expand(i=items()))
