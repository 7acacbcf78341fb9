"""Pure argument resolution: expressions + upstream results -> the keyword arguments of each instance.

An expression (made by `minimap.authoring.xcomarg.to_expr`) is one of:
  {"lit": value}                      a JSON literal
  {"ref": task_id}                    an upstream result (a mapped task's: its non-None results by map_index)
  {"ref": task_id, "key": k}          one key of a dict result (multiple_outputs; a mapped task's: by map_index)
  {"map": fn_id, "src": expr}         fn applied to each element -- by the worker, so kept as `Deferred`
  {"zip": [expr...], "fill"?: value}  tuples of i-th elements
  {"concat": [expr...]}               sequences chained
  {"list": [expr...]}, {"dict": {k: expr}}  containers holding references
  {"lane": name, "default"?: value}   an argument of a mapped task group's function: this lane's value

Stored arguments are JSON: {"kw": {...}, "fx": [[path, [fn_id...]], ...], "merge"?: {...}, "lane"?: {...}};
`fx` lists where a deferred `.map` function must be applied (innermost first) before the call, and `lane`
holds the lane's arguments of an instance in a mapped task group (its label is rendered from them).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from minimap.snapshot import TaskSpec

MISSING: Any = object()  # an upstream that did not succeed has no result
LANE = " lane"  # the key under which `evaluate` finds the lane's arguments (no task id has a space)


class ExpansionError(Exception):
    """The arguments of a task cannot be built from its upstream results."""


@dataclass(frozen=True)
class Deferred:
    """A value that `.map()` functions (by number, applied in order) turn into the real argument."""

    fns: tuple[int, ...]
    value: Any


def _as_sequence(value: Any, what: str) -> list[Any]:
    if isinstance(value, dict):
        return [[k, v] for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return list(value)
    kind = "nothing (None)" if value is None else f"a {type(value).__name__}"
    raise ExpansionError(f"{what} is {kind}, not a list or dict")


def evaluate(expr: Mapping[str, Any], values: Mapping[str, Any], strict: bool) -> Any:
    """The value of `expr`; a missing upstream result raises if `strict`, else reads as None."""
    if "lit" in expr:
        return expr["lit"]
    if "ref" in expr:
        value = values.get(expr["ref"], MISSING)
        if value is MISSING:
            if strict:
                raise ExpansionError(f"upstream task {expr['ref']} has no result (it did not succeed)")
            return None
        return value if "key" not in expr else _key(value, expr["ref"], expr["key"])
    if "lane" in expr:
        lane = values.get(LANE) or {}
        if expr["lane"] in lane:
            return lane[expr["lane"]]
        if "default" in expr:
            return expr["default"]
        raise ExpansionError(f"the lane has no argument {expr['lane']!r} (its expand_kwargs() dict lacks it)")
    if "map" in expr:
        src = _as_sequence(evaluate(expr["src"], values, strict), "the input of .map()")
        fn = int(expr["map"])
        return [Deferred(e.fns + (fn,), e.value) if isinstance(e, Deferred) else Deferred((fn,), e) for e in src]
    if "zip" in expr:
        seqs = [_as_sequence(evaluate(e, values, strict), "an input of .zip()") for e in expr["zip"]]
        if "fill" in expr:
            return [list(t) for t in itertools.zip_longest(*seqs, fillvalue=expr["fill"])]
        return [list(t) for t in zip(*seqs, strict=False)]  # Airflow: the shortest wins
    if "concat" in expr:
        return [x for e in expr["concat"] for x in _as_sequence(evaluate(e, values, strict), "an input of .concat()")]
    if "list" in expr:
        return [evaluate(e, values, strict) for e in expr["list"]]
    if "dict" in expr:
        return {k: evaluate(e, values, strict) for k, e in expr["dict"].items()}
    raise ExpansionError(f"unknown expression {expr!r}")


def _key(value: Any, task_id: str, key: str) -> Any:
    """`value[key]` for a multiple_outputs result; a mapped task's list of results gives a list."""
    if isinstance(value, list):
        return [_key(v, task_id, key) for v in value]
    if not isinstance(value, dict) or key not in value:
        kind = "a dict without it" if isinstance(value, dict) else f"a {type(value).__name__}"
        raise ExpansionError(f"{task_id}[{key!r}]: task {task_id} returned {kind}")
    return value[key]


def call_kwargs(task: TaskSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of an unmapped task (or the constants of a mapped one)."""
    return {k: evaluate(e, values, strict=False) for k, e in task.kwargs.items()}


def expand(task: TaskSpec, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The keyword arguments of every instance of a mapped task, in map_index order."""
    constants = call_kwargs(task, values)
    if task.expand_kwargs is not None:
        rows = _as_sequence(evaluate(task.expand_kwargs, values, strict=True), "the input of expand_kwargs()")
        out = []
        for i, row in enumerate(rows):
            if isinstance(row, Deferred):
                out.append({**constants, "": row})  # merged after its .map() function has run
            elif isinstance(row, dict):
                out.append({**constants, **row})
            else:
                raise ExpansionError(f"expand_kwargs() element {i} is a {type(row).__name__}, not a dict")
        return out
    assert task.expand is not None
    names = list(task.expand)
    seqs = [_as_sequence(evaluate(task.expand[n], values, strict=True), f"the input of expand({n}=...)") for n in names]
    return [{**constants, **dict(zip(names, combo, strict=True))} for combo in itertools.product(*seqs)]


def _plain(value: Any, path: list[Any], fx: list[list[Any]]) -> Any:
    """`value` as JSON data, noting in `fx` where a Deferred stood (inner ones first)."""
    if isinstance(value, Deferred):
        inner = _plain(value.value, path, fx)
        fx.append([list(path), list(value.fns)])
        return inner
    if isinstance(value, dict):
        return {k: _plain(v, path + [k], fx) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, path + [i], fx) for i, v in enumerate(value)]
    return value


def lanes(expand_input: Mapping[str, Any] | None, expand_kwargs: Any, values: Mapping[str, Any]) -> list[Any]:
    """The arguments of each lane of a mapped task group, in map_index order (as a mapped task's)."""
    if expand_kwargs is not None:
        rows = _as_sequence(evaluate(expand_kwargs, values, strict=True), "the input of expand_kwargs()")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ExpansionError(f"expand_kwargs() element {i} is a {type(row).__name__}, not a dict")
    else:
        assert expand_input is not None
        names = list(expand_input)
        seqs = [
            _as_sequence(evaluate(expand_input[n], values, strict=True), f"the input of expand({n}=...)") for n in names
        ]
        rows = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*seqs)]
    if any(isinstance(v, Deferred) for row in rows for v in [row, *row.values()]):
        raise ExpansionError("a task group cannot be mapped over the output of .map() yet: map inside the group")
    return rows


def lane_of(text: str | None) -> dict[str, Any]:
    """The lane arguments stored with an instance of a mapped task group ({} for any other instance)."""
    if not text:
        return {}
    lane = json.loads(text).get("lane")
    return lane if isinstance(lane, dict) else {}


def encode_args(kwargs: Mapping[str, Any], lane: Mapping[str, Any] | None = None) -> str:
    """Resolved keyword arguments as the JSON text stored on the instance."""
    merge = kwargs.get("")
    fx: list[list[Any]] = []
    doc: dict[str, Any] = {"kw": _plain({k: v for k, v in kwargs.items() if k != ""}, [], fx)}
    if fx:
        doc["fx"] = fx
    if merge is not None:
        mfx: list[list[Any]] = []
        doc["merge"] = {"v": _plain(merge, [], mfx), "fx": mfx}
    if lane is not None:
        doc["lane"] = dict(lane)
    return json.dumps(doc, separators=(",", ":"))


def _apply(value: Any, fx: Sequence[Sequence[Any]], fns: Sequence[Callable[[Any], Any]]) -> Any:
    root = {"": value}
    for path, ids in fx:
        holder: Any = root
        key: Any = ""
        for step in path:
            holder, key = holder[key], step
        for fn_id in ids:
            holder[key] = fns[fn_id](holder[key])
    return root[""]


def decode_args(text: str | None, fns: Sequence[Callable[[Any], Any]]) -> dict[str, Any]:
    """Stored arguments back to keyword arguments, applying deferred `.map()` functions (worker side)."""
    if not text:
        return {}
    doc = json.loads(text)
    kwargs: dict[str, Any] = _apply(doc["kw"], doc.get("fx", ()), fns)
    if "merge" in doc:
        extra = _apply(doc["merge"]["v"], doc["merge"]["fx"], fns)
        if not isinstance(extra, dict):
            raise ExpansionError(f"expand_kwargs() element is a {type(extra).__name__}, not a dict")
        kwargs.update(extra)
    return kwargs
