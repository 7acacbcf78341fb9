"""Airflow features in the authoring layer: @dag, multiple_outputs, context injection, templates."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from jinja2 import UndefinedError

from minimap import DAG, BashOperator, EmptyOperator, PythonOperator, chain, dag, task
from minimap.authoring.context import TaskInstanceInfo, build_context, call_with_context
from minimap.authoring.templating import environment, render
from minimap.exceptions import DefinitionError, MinimapError
from minimap.rules.expansion import ExpansionError, evaluate


@task
def numbers() -> dict[str, int]:
    return {"a": 1}


@task
def plain() -> list[int]:
    return [1]


@task
def use(v):  # type: ignore[no-untyped-def]
    return v


def test_dag_decorator_makes_the_dag_when_called() -> None:
    @dag(schedule=None, tags=["t"])
    def my_pipeline():  # type: ignore[no-untyped-def]
        use(numbers()["a"])

    made = my_pipeline()
    assert isinstance(made, DAG) and made.dag_id == "my_pipeline" and list(made.tasks) == ["numbers", "use"]
    assert made.spec().tasks["use"].kwargs == {"v": {"ref": "numbers", "key": "a"}}

    @dag
    def bare():  # type: ignore[no-untyped-def]
        use(1)

    assert bare().dag_id == "bare"


def test_dag_decorator_refuses_parameters() -> None:
    with pytest.raises(DefinitionError, match="takes parameters"):

        @dag(dag_id="x")
        def with_params(n=1):  # type: ignore[no-untyped-def]
            pass


def test_multiple_outputs_from_the_annotation_or_the_keyword() -> None:
    with DAG("d") as d:
        assert repr(numbers()["a"]) == "XComArg('numbers', key='a')"
        task(multiple_outputs=True)(lambda: {"b": 2}).override(task_id="lam")()
        with pytest.raises(DefinitionError, match=r"plain\['a'\] needs multiple_outputs=True"):
            plain()["a"]
    spec = d.spec()
    assert spec.tasks["numbers"].multiple_outputs and spec.tasks["lam"].multiple_outputs


def test_a_key_reference_resolves_from_one_or_many_results() -> None:
    expr = {"ref": "t", "key": "a"}
    assert evaluate(expr, {"t": {"a": 1}}, strict=True) == 1
    assert evaluate(expr, {"t": [{"a": 1}, {"a": 2}]}, strict=True) == [1, 2]
    with pytest.raises(ExpansionError, match=r"t\['a'\]: task t returned a dict without it"):
        evaluate(expr, {"t": {"b": 1}}, strict=True)


def _context(**conf: Any) -> dict[str, Any]:
    with DAG("d", params={"who": "dag"}) as d:
        use(1)
    ti = TaskInstanceInfo("d", "use", "r1", 3, 2)
    return build_context(d, d.tasks["use"], ti, conf, datetime(2025, 2, 3, 4, 5, tzinfo=timezone.utc))


def test_context_keys_match_airflows() -> None:
    ctx = _context(who="conf")
    assert ctx["ds"] == "2025-02-03" and ctx["ds_nodash"] == "20250203" and ctx["ts_nodash"] == "20250203T040500"
    assert ctx["params"] == {"who": "conf"} and ctx["dag_run"].conf == {"who": "conf"}
    assert ctx["ti"].map_index == 3 and ctx["ti"].try_number == 2 and ctx["task_instance"] is ctx["ti"]
    assert ctx["logical_date"] == ctx["dag_run"].logical_date == ctx["data_interval_start"]


def test_task_functions_receive_the_context_keys_they_ask_for() -> None:
    ctx = _context()

    def named(x, ti=None, ds=None):  # type: ignore[no-untyped-def]
        return (x, ti.map_index, ds)

    def everything(x, **context):  # type: ignore[no-untyped-def]
        return (x, sorted(context) == sorted(k for k in ctx if k != "x"))

    assert call_with_context(named, {"x": 1}, ctx) == (1, 3, "2025-02-03")
    assert call_with_context(everything, {"x": 1}, ctx) == (1, True)


def test_templates_render_sandboxed_and_strict() -> None:
    ctx = _context()
    env = environment(ctx["dag"])
    assert render({"a": ["{{ ds }}", "{{ params.who }}", 3]}, ctx, env) == {"a": ["2025-02-03", "dag", 3]}
    with pytest.raises(UndefinedError):
        render("{{ nope }}", ctx, env)
    with pytest.raises(Exception, match="unsafe|not safely"):
        render("{{ ''.__class__.__mro__ }}", ctx, env)


def test_operators_are_nodes_with_output_and_bitshift() -> None:
    with DAG("d") as d:
        a = BashOperator(task_id="a", bash_command="echo {{ ds }}")
        b = PythonOperator(task_id="b", python_callable=print, op_kwargs={"x": a.output})
        c = BashOperator.partial(task_id="c").expand(bash_command=["echo 1", "echo 2"])
        a >> c
    spec = d.spec()
    assert spec.tasks["b"].upstream == ("a",) and spec.tasks["b"].kwargs == {"op_kwargs": {"dict": {"x": {"ref": "a"}}}}
    assert spec.tasks["c"].upstream == ("a",) and spec.tasks["c"].expand == {
        "bash_command": {"lit": ["echo 1", "echo 2"]}
    }
    assert b.node is d.tasks["b"]


def test_xcom_pull_returns_airflows_shapes() -> None:
    stored = {"one": [(-1, {"k": 1})], "many": [(0, "a"), (1, "b"), (2, "c")]}

    def reader(task_id: str, map_indexes: list[int] | None) -> list[tuple[int, Any]]:
        return [(i, v) for i, v in stored.get(task_id, []) if map_indexes is None or i in map_indexes]

    ti = TaskInstanceInfo(
        "d", "me", "r", -1, 1, reader, frozenset({"one", "many", "none"}), mapped_tasks=frozenset({"many"})
    )
    assert ti.xcom_pull(task_ids="one") == {"k": 1} and ti.xcom_pull(task_ids="one", key="k") == 1
    assert ti.xcom_pull(task_ids="many") == ["a", "b", "c"] and ti.xcom_pull(task_ids="many", map_indexes=1) == "b"
    assert ti.xcom_pull(task_ids="many", map_indexes=[0, 2]) == ["a", "c"]
    assert ti.xcom_pull(task_ids=["one", "many"]) == [{"k": 1}, "a", "b", "c"]
    assert ti.xcom_pull(task_ids="none", default="d") == "d"
    for bad, message in [({}, "needs task_ids"), ({"task_ids": "nope"}, "has no such task")]:
        with pytest.raises(MinimapError, match=message):
            ti.xcom_pull(**bad)
    with pytest.raises(MinimapError, match=r"xcom_pull\(include_prior_dates=...\) is not supported"):
        ti.xcom_pull(task_ids="one", include_prior_dates=True)
    with pytest.raises(MinimapError, match="xcom_push.*is not supported: return the value"):
        ti.xcom_push("k", 1)


def test_chain_and_empty_operator_make_airflows_edges() -> None:
    with DAG("d") as d:
        start, end = EmptyOperator(task_id="start"), EmptyOperator(task_id="end")
        a, b = use.override(task_id="a")(1), use.override(task_id="b")(2)
        c, e = use.override(task_id="c")(3), use.override(task_id="e")(4)
        chain(start, [a, b], [c, e], end)
        with pytest.raises(DefinitionError, match="same length, got 2 and 1"):
            chain([a, b], [end])
    up = {t: set(v.upstream_ids) for t, v in d.tasks.items()}
    assert up == {"start": set(), "end": {"c", "e"}, "a": {"start"}, "b": {"start"}, "c": {"a"}, "e": {"b"}}


def test_task_python_is_task_and_other_task_kinds_are_refused() -> None:
    with DAG("d") as d:
        task.python(retries=2)(lambda: 1).override(task_id="p")()
    assert d.spec().tasks["p"].retries == 2
    with pytest.raises(DefinitionError, match=r"@task.bash is not supported yet: use BashOperator"):
        task.bash  # noqa: B018
    assert not hasattr(task, "__test__")
