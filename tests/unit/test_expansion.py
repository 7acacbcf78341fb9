"""Argument expansion: Airflow's order and shapes, and the deferred .map() encoding."""

import pytest

from minimap.rules.expansion import MISSING, Deferred, ExpansionError, decode_args, encode_args, evaluate, expand
from minimap.snapshot import TaskSpec


def spec(expand_: dict | None = None, kwargs: dict | None = None, expand_kwargs: dict | None = None) -> TaskSpec:
    return TaskSpec(
        task_id="t",
        upstream=(),
        downstream=(),
        trigger_rule="all_success",
        retries=0,
        retry_delay=0,
        retry_exponential_backoff=False,
        max_retry_delay=None,
        execution_timeout=None,
        max_active_tis_per_dag=None,
        max_active_tis_per_dagrun=None,
        map_index_template=None,
        mapped_over=False,
        kwargs=kwargs or {},
        expand=expand_,
        expand_kwargs=expand_kwargs,
    )


def lit(v: object) -> dict:
    return {"lit": v}


CASES = [
    # name, task, upstream values, expected kwargs per map_index
    ("one list", spec({"x": lit([1, 2])}), {}, [{"x": 1}, {"x": 2}]),
    (
        "cross product, last keyword fastest",
        spec({"x": lit([1, 2]), "y": lit(["a", "b"])}),
        {},
        [{"x": 1, "y": "a"}, {"x": 1, "y": "b"}, {"x": 2, "y": "a"}, {"x": 2, "y": "b"}],
    ),
    ("dict gives (key, value) pairs", spec({"p": lit({"a": 1, "b": 2})}), {}, [{"p": ["a", 1]}, {"p": ["b", 2]}]),
    ("partial constants", spec({"x": lit([1])}, kwargs={"c": lit(5)}), {}, [{"c": 5, "x": 1}]),
    ("upstream output", spec({"x": {"ref": "up"}}), {"up": [3, 4]}, [{"x": 3}, {"x": 4}]),
    ("zero length", spec({"x": {"ref": "up"}}), {"up": []}, []),
    ("cross with an empty list", spec({"x": lit([1, 2]), "y": lit([])}), {}, []),
    (
        "expand_kwargs",
        spec(expand_kwargs={"ref": "up"}, kwargs={"c": lit(0)}),
        {"up": [{"x": 1}, {"x": 2, "c": 9}]},
        [{"c": 0, "x": 1}, {"c": 9, "x": 2}],
    ),
    (
        "zip stops at the shortest",
        spec({"x": {"zip": [lit([1, 2, 3]), lit(["a", "b"])]}}),
        {},
        [{"x": [1, "a"]}, {"x": [2, "b"]}],
    ),
    (
        "zip with fillvalue",
        spec({"x": {"zip": [lit([1, 2]), lit(["a"])], "fill": None}}),
        {},
        [{"x": [1, "a"]}, {"x": [2, None]}],
    ),
    ("concat", spec({"x": {"concat": [lit([1]), {"ref": "up"}]}}), {"up": [2, 3]}, [{"x": 1}, {"x": 2}, {"x": 3}]),
]


@pytest.mark.parametrize(("name", "task", "values", "expected"), CASES, ids=[c[0] for c in CASES])
def test_expand(name: str, task: TaskSpec, values: dict, expected: list[dict]) -> None:
    assert expand(task, values) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [(None, r"nothing \(None\)"), (5, "a int"), ("abc", "a str")],
)
def test_expanding_a_non_sequence_is_an_error(value: object, message: str) -> None:
    with pytest.raises(ExpansionError, match=message):
        expand(spec({"x": {"ref": "up"}}), {"up": value})


def test_a_missing_upstream_has_unknown_length() -> None:
    with pytest.raises(ExpansionError, match="did not succeed"):
        expand(spec({"x": {"ref": "up"}}), {"up": MISSING})


def test_map_is_deferred_to_the_worker_and_applied_innermost_first() -> None:
    expr = {"map": 1, "src": {"zip": [{"map": 0, "src": lit([1, 2])}, lit(["a", "b"])]}}
    values = evaluate(expr, {}, strict=True)
    assert values[0] == Deferred((1,), [Deferred((0,), 1), "a"])
    fns = [lambda v: v * 10, lambda pair: f"{pair[0]}{pair[1]}"]
    assert [decode_args(encode_args({"x": v}), fns) for v in values] == [{"x": "10a"}, {"x": "20b"}]


def test_deferred_expand_kwargs_rows_are_merged_after_the_function() -> None:
    rows = expand(spec(expand_kwargs={"map": 0, "src": lit([1, 2])}, kwargs={"c": lit(0)}), {})
    fns = [lambda v: {"x": v, "c": v * 100}]
    assert [decode_args(encode_args(r), fns) for r in rows] == [{"c": 100, "x": 1}, {"c": 200, "x": 2}]


def test_unmapped_arguments_read_a_missing_upstream_as_none() -> None:
    assert evaluate({"ref": "up"}, {"up": MISSING}, strict=False) is None
