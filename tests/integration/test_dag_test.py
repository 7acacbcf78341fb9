"""`dag.test()` from pytest: a DAG made inside a test function runs in this process, on a throwaway database."""

from __future__ import annotations

import pytest

from minimap import DAG, task
from minimap.states import RunState


def test_dag_test_runs_a_dag_made_inside_a_test(capsys: pytest.CaptureFixture[str]) -> None:
    @task
    def double(x):  # type: ignore[no-untyped-def]
        return 2 * x

    @task
    def total(values, ti=None):  # type: ignore[no-untyped-def]
        return [sum(values), ti.task_id]

    with DAG("inside_a_test") as dag:
        total(double.expand(x=[1, 2, 3]))
    run = dag.test()
    assert run.state is RunState.SUCCESS
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == [
        "double[0]: success -> 2",
        "double[1]: success -> 4",
        "double[2]: success -> 6",
        'total: success -> [12, "total"]',
    ]
    assert out[4].endswith("of DAG inside_a_test: success")
