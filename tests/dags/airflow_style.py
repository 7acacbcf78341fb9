"""A DAG file written as Airflow users write them: @dag, context, multiple_outputs, operators, templates."""

from __future__ import annotations

from datetime import datetime

from minimap import BaseOperator, BashOperator, PythonOperator, dag, get_current_context, task


class AddOperator(BaseOperator):
    """A custom operator, mapped as in Airflow's own examples."""

    template_fields = ("label",)

    def __init__(self, x: int, y: int, label: str = "", **kwargs):
        super().__init__(**kwargs)
        self.x = x
        self.y = y
        self.label = label

    def execute(self, context):
        print(f"{self.label}: {self.x} + {self.y} in {context['run_id']}")
        return self.x + self.y


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["example"], params={"who": "world"})
def airflow_style():
    @task
    def split() -> dict[str, list[int]]:
        return {"xs": [1, 2], "ys": [10]}

    @task
    def context_keys(ti=None, run_id=None, params=None, ds=None, **context):
        current = get_current_context()
        assert current["run_id"] == run_id == ti.run_id and context["dag_run"].run_id == run_id
        return {
            "task_id": ti.task_id,
            "map_index": ti.map_index,
            "try_number": ti.try_number,
            "who": params["who"],
            "ds_ok": ds == context["logical_date"].strftime("%Y-%m-%d"),
            "pulled": ti.xcom_pull(task_ids="split"),
            "pulled_key": ti.xcom_pull(task_ids="split", key="xs"),
            "mapped_pulled": ti.xcom_pull(task_ids="add"),
        }

    @task
    def total(values, ys):
        return sum(values) + sum(ys)

    @task
    def greet(who, day=None):
        return f"{who} {day}"

    @task
    def raw():
        return "{{ not rendered }}"

    parts = split()
    greet.override(task_id="greet_literal")("{{ params.who }}", day="{{ ds }}")
    greet.override(task_id="greet_mapped").partial(day="d").expand(who=["{{ ti.map_index }}", "{{ run_id[:6] }}"])
    greet.override(task_id="greet_upstream")(raw())
    added = AddOperator.partial(task_id="add", y=100, label="{{ params.who }}").expand(x=parts["xs"])
    echo = BashOperator.partial(task_id="echo").expand(bash_command=["echo {{ ds }} one", "echo two; echo last"])
    templated = BashOperator(task_id="templated", bash_command="echo {{ params.who }} {{ ti.map_index }}")
    python = PythonOperator(task_id="python", python_callable=lambda a, b: a * b, op_kwargs={"a": 6, "b": 7})
    keys = context_keys()
    added >> keys
    total(added.output, parts["ys"])
    echo >> templated >> python


airflow_style()
