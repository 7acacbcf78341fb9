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


def test_dag_test_makes_the_pools_the_dag_names_and_tolerates_failures(capsys: pytest.CaptureFixture[str]) -> None:
    @task(pool="db", pool_slots=2, tolerated_failures=1)
    def check(x):  # type: ignore[no-untyped-def]
        if x == 2:
            raise ValueError("two")
        return x

    @task
    def total(values, failed_map_indexes):  # type: ignore[no-untyped-def]
        return [sum(values), failed_map_indexes]

    with DAG("pooled_test") as dag:
        total(check.expand(x=[1, 2, 3]))
    run = dag.test()
    assert run.state is RunState.SUCCESS
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "check[1]: failed (ValueError: two)"
    assert out[3] == 'total: success -> [4, {"check": [1]}]'
