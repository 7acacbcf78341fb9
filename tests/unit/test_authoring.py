"""The authoring API: Airflow's names, and definition errors that point at the DAG file's line."""

import pytest

from minimap import DAG, task
from minimap.exceptions import DefinitionError


@task
def one(x):
    return x


def test_reusing_a_task_function_numbers_its_ids_like_airflow() -> None:
    with DAG("d") as dag:
        one(1)
        one(2)
        one.expand(x=[1])
    assert list(dag.tasks) == ["one", "one__1", "one__2"]


def test_outputs_make_edges_and_bitshift_too() -> None:
    with DAG("d") as dag:
        a = one(1)
        b = one(a)
        c = one(3)
        b >> c
    assert dag.tasks["one__1"].upstream_ids == {"one"}
    assert dag.tasks["one__2"].upstream_ids == {"one__1"}
    assert str(a).startswith("XComArg")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: one.expand(), "needs at least one argument"),
        (lambda: one.expand(y=[1]), "unknown argument 'y'"),
        (lambda: one.expand(x="abc"), "is a str; expand\\(\\) maps over a list"),
        (lambda: one.expand(x=5), "is a int"),
        (lambda: one.partial(x=1).expand(x=[1]), "given to both partial\\(\\) and expand\\(\\)"),
        (lambda: one.partial(x=1).partial(x=2), "got argument 'x' twice"),
        (lambda: one(1, 2), "too many positional arguments"),
        (lambda: one.expand_kwargs("x"), "takes a list of dicts"),
        (lambda: one.override(trigger_rule="sometimes")(1), "unknown trigger_rule 'sometimes'"),
        (lambda: one.partial(x={1, 2}).expand_kwargs([{}]), "cannot be stored as JSON"),
    ],
)
def test_definition_errors_name_the_line(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DefinitionError, match=message) as err, DAG("d") as dag:
        build()
        dag.snapshot()
    assert "test_authoring.py:" in str(err.value) or "JSON" in str(err.value)


def test_a_cycle_is_an_error() -> None:
    with pytest.raises(DefinitionError, match="cycle: one >> one__1 >> one"), DAG("d"):
        a = one(1)
        b = one(a)
        b >> a  # type: ignore[operator]


def test_a_task_outside_a_dag_is_an_error() -> None:
    with pytest.raises(DefinitionError, match="outside a `with DAG"):
        one(1)


def test_airflow_keywords_are_accepted_and_kept() -> None:
    from datetime import datetime, timedelta

    dag = DAG(
        dag_id="poc",
        start_date=datetime(2025, 1, 13),
        schedule=None,
        catchup=False,
        tags=["poc"],
        default_args={"owner": "airflow", "retry_delay": timedelta(minutes=1)},
        max_active_runs=1,
        max_active_tasks=3,
        description="d",
        dagrun_timeout=timedelta(hours=1),
    )
    with dag:
        one(1)
    snap = dag.snapshot()
    assert snap["max_active_tasks"] == 3 and snap["tasks"]["one"]["retry_delay"] == 60.0
    assert dag.other == {"dagrun_timeout": timedelta(hours=1)}
