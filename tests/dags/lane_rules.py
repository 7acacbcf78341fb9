"""Trigger rules decided per lane: step `a` fails in lane N while `<flags>/fail-a-N` exists, and is skipped in
lane N while `<flags>/skip-a-N` exists; the steps after it show each rule's verdict lane by lane."""

from pathlib import Path

from minimap import DAG, get_current_context, task, task_group
from minimap.exceptions import SkipTask, TaskFailed

with DAG(dag_id="lane_rules", max_active_tasks=8) as dag:

    @task
    def a(x):
        flags = Path(get_current_context()["conf"]["flags"])
        if (flags / f"fail-a-{x}").exists():
            raise TaskFailed(f"a failed in lane {x}")
        if (flags / f"skip-a-{x}").exists():
            raise SkipTask(f"a skipped in lane {x}")
        return x

    @task(trigger_rule="one_failed")
    def on_failure(v=None):
        return "cleanup"

    @task(trigger_rule="none_failed_min_one_success")
    def if_fine(v=None):
        return "fine"

    @task(trigger_rule="all_done")
    def always(v=None):
        return v

    @task
    def plain(v):
        return v

    @task(trigger_rule="all_done")
    def report(values):
        return values

    @task_group
    def lane(x):
        got = a(x)
        on_failure(got)
        if_fine(got)
        plain(got)
        return always(got)

    report(lane.expand(x=[0, 1, 2, 3, 4]))
