"""One DAG whose keywords a test picks with MINIMAP_TEST_CASE: each case is refused, or warns, at load time."""

import os
from datetime import datetime, timedelta

from minimap import DAG, BashOperator, task

CASE = os.environ.get("MINIMAP_TEST_CASE", "")
TASK = {
    "typo": {"retires": 3},
    "pool": {"pool": "db"},
    "pool_slots": {"pool_slots": 0},
    "priority_weight": {"priority_weight": "high"},
    "callback": {"on_failure_callback": print},
    "depends_on_past": {"depends_on_past": True},
    "email": {"email": ["ops@example.com"]},
}.get(CASE, {})
DAG_KW = {
    "dag_typo": {"max_active_task": 3},
    "fail_stop": {"fail_stop": True},
    "schedule": {"schedule": "@daily", "start_date": datetime(2025, 1, 1), "catchup": False},
    "dataset_schedule": {"schedule": [object()]},
}.get(CASE, {})
DEFAULT_ARGS = {"default_typo": {"retry_dealy": timedelta(seconds=1)}}.get(CASE, {"owner": "me"})
DAG_ID = {"long_id": "d" * 251, "bad_id": "my dag"}.get(CASE, "keywords")

with DAG(DAG_ID, default_args=DEFAULT_ARGS, tags=["t"], description="x", **DAG_KW) as dag:

    @task(**TASK)
    def hello():
        return "hi"

    after = hello()
    if CASE == "operator_typo":
        BashOperator(task_id="b", bash_command="echo", retires=1)
    if CASE == "partial_typo":
        BashOperator.partial(task_id="b", bash_comand="echo").expand(env=[{}])
    if CASE == "long_task_id":
        hello.override(task_id="t" * 251)()
    if CASE == "task_bash":
        task.bash(lambda: "echo hi")
