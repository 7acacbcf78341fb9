"""Airflow's keywords: each honoured or refused at load time with one line naming the file and line."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from minimap import DAG, BashOperator, dag, task
from minimap.authoring import keywords
from minimap.authoring.ids import check_id
from minimap.exceptions import DefinitionError, SnapshotError
from minimap.snapshot import SNAPSHOT_VERSION, DagSpec


def one(x: int = 0) -> int:
    return x


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retires": 3}, r"unknown argument 'retires' to @task \(did you mean 'retries'\?\)"),
        ({"queue": "gpu"}, "queue is not supported .*every worker runs every task"),
        ({"on_failure_callback": print}, "on_failure_callback is not supported"),
        ({"depends_on_past": True}, "depends_on_past is not supported"),
        ({"email": "a@b.c"}, "email is not supported .*sends no email"),
        ({"sla": timedelta(hours=1)}, "sla is not supported .*execution_timeout"),
        ({"task_group": object()}, "task_group is not supported yet"),
        ({"op_kwargs": {"x": 1}}, "op_kwargs is not used by @task"),
    ],
)
def test_task_keywords_refused_name_the_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as err:
        task(**kwargs)(one)
    assert "test_airflow_keywords.py:" in str(err.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"owner": "me", "doc_md": "# doc", "task_display_name": "One"},
        {"pool": None, "pool_slots": 1, "priority_weight": 1, "queue": "default", "depends_on_past": False},
        {"email": ["a@b.c"], "email_on_failure": False, "email_on_retry": False},
        {"retries": 2, "retry_delay": timedelta(seconds=3), "task_concurrency": 2, "do_xcom_push": False},
    ],
)
def test_task_keywords_with_no_effect_or_at_their_default_are_accepted(kwargs: dict[str, Any]) -> None:
    with DAG("d") as d:
        task(**kwargs)(one)()
    spec = d.spec().tasks["one"]
    assert spec.retries == kwargs.get("retries", 0)
    assert spec.max_active_tis_per_dag == kwargs.get("task_concurrency")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pool": ""}, "pool must be a pool's name, got ''"),
        ({"pool_slots": 0}, "pool_slots must be a whole number >= 1, got 0"),
        ({"priority_weight": "high"}, "priority_weight must be a whole number, got 'high'"),
        ({"weight_rule": "sideways"}, "unknown weight_rule 'sideways'; use one of downstream, upstream, absolute"),
        ({"tolerated_failures": -1}, "tolerated_failures must be a whole number >= 0 or a percentage"),
        ({"tolerated_failures": "101%"}, "tolerated_failures must be a whole number >= 0 or a percentage"),
        ({"tolerated_failures": "x%"}, "tolerated_failures must be a whole number >= 0 or a percentage"),
    ],
)
def test_pool_priority_and_tolerance_values_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as err, DAG("d"):
        task(**kwargs)(one).expand(x=[1])
    assert "test_airflow_keywords.py:" in str(err.value)


def test_pool_priority_and_tolerance_reach_the_snapshot() -> None:
    with DAG("d", default_args={"pool": "db", "tolerated_failures": "5%"}) as d:
        task(pool_slots=2, priority_weight=3, weight_rule="absolute", tolerated_failures=2)(one).expand(x=[1])
        task(one)()  # unmapped: tolerated_failures from default_args does not apply
    mapped, plain = d.spec().tasks["one"], d.spec().tasks["one__1"]
    assert (mapped.pool, mapped.pool_slots, mapped.priority_weight, mapped.weight_rule) == ("db", 2, 3, "absolute")
    assert (mapped.tolerated_failures, plain.tolerated_failures, plain.pool) == (2, None, "db")
    with pytest.raises(DefinitionError, match="tolerated_failures applies to a mapped task"), DAG("e"):
        task(tolerated_failures=1)(one)()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DAG("d", max_active_task=3), r"unknown argument 'max_active_task' to DAG \(did you mean"),
        (lambda: DAG("d", default_args={"retires": 1}), r"'retires' to default_args \(did you mean 'retries'"),
        (lambda: DAG("d", default_args={"queue": "x"}), "queue is not supported"),
        (lambda: DAG("d", fail_stop=True), "fail_stop is not supported yet"),
        (lambda: DAG("d", on_failure_callback=print), "on_failure_callback is not supported"),
        (lambda: DAG("d", schedule=[object()]), "schedule=.* is not supported yet"),
        (lambda: dag(schedul="@daily"), r"unknown argument 'schedul' to @dag \(did you mean 'schedule'"),
        (lambda: DAG("d" * 251), "is 251 characters long; the limit is 250"),
        (lambda: DAG("a/b"), "has the character '/'"),
    ],
)
def test_dag_keywords_refused_name_the_line(build: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as err:
        build()
    assert "test_airflow_keywords.py:" in str(err.value)


def test_operator_and_partial_keywords_are_checked() -> None:
    with DAG("d"):
        with pytest.raises(DefinitionError, match=r"'retires' to BashOperator \(did you mean 'retries'"):
            BashOperator(task_id="b", bash_command="echo", retires=1)
        with pytest.raises(DefinitionError, match=r"'bash_comand' to BashOperator.partial\(\) \(did you mean"):
            BashOperator.partial(task_id="b", bash_comand="echo")
        with pytest.raises(DefinitionError, match="queue is not supported"):
            BashOperator.partial(task_id="b", queue="p")
        with pytest.raises(DefinitionError, match=r"'bash_comand' to BashOperator.expand\(\)"):
            BashOperator.partial(task_id="b").expand(bash_comand=["echo"])
        BashOperator(task_id="a", bash_command="echo")
        with pytest.raises(DefinitionError, match="already has a task 'a'"):
            BashOperator(task_id="a", bash_command="echo")


def test_a_task_asking_for_a_context_key_minimap_lacks_is_refused() -> None:
    @task
    def wants(var):  # type: ignore[no-untyped-def]
        return var

    with pytest.raises(DefinitionError, match="context key 'var', which minimap does not provide"), DAG("d"):
        wants()


def test_ids_follow_airflows_rule() -> None:
    assert check_id("task", "a.b-c_9", "f:1") == "a.b-c_9"
    assert check_id("dag", "x" * 250, "f:1")
    for bad in ("", "a b", "x" * 251, "é/"):
        with pytest.raises(DefinitionError):
            check_id("group", bad, "f:1")


def test_every_airflow_keyword_has_a_decision() -> None:
    for table in (keywords.TASK_KEYWORDS, keywords.DAG_KEYWORDS):
        for name, spec in table.items():
            assert spec.kind in (keywords.HONOURED, keywords.NO_EFFECT, keywords.AT_DEFAULT, keywords.NOT_YET), name
            assert spec.kind in (keywords.HONOURED, keywords.NO_EFFECT) or spec.instead, name


def test_the_snapshot_round_trips_and_stores_the_schedule() -> None:
    with DAG(
        "d",
        schedule="0 3 * * *",
        start_date=datetime(2025, 1, 1),
        catchup=True,
        tags=["x"],
        dagrun_timeout=timedelta(minutes=5),
    ) as d:
        task(retries=2)(one)()
    spec = d.spec()
    assert DagSpec.from_json(d.snapshot()) == spec
    assert (spec.schedule, spec.start_date, spec.catchup, spec.tags) == (
        "0 3 * * *",
        "2025-01-01T00:00:00",
        True,
        ("x",),
    )
    assert spec.dagrun_timeout == 300.0
    assert len(d.warnings) == 1 and "dagrun_timeout" in d.warnings[0]  # the schedule is acted on: no warning
    assert DAG("e", schedule=timedelta(hours=1), start_date=datetime(2025, 1, 1)).schedule == "every 3600 seconds"
    assert DAG("f").warnings == []


def test_a_snapshot_of_another_version_is_refused() -> None:
    with DAG("d") as d:
        task(one)()
    data = d.snapshot()
    for version in (1, SNAPSHOT_VERSION + 1, None):
        with pytest.raises(SnapshotError, match="another minimap"):
            DagSpec.from_json({**data, "version": version})
    with pytest.raises(SnapshotError, match="not readable"):
        DagSpec.from_json({**data, "tasks": {"one": {"upstream": [], "downstream": [], "bogus": 1}}})
