"""References to task outputs (Airflow's XComArg) and the lazy transforms on them: map, zip, concat.

At definition time an XComArg is a promise; `to_expr` turns it into plain JSON data (an *expression*)
that the scheduler evaluates against stored results without importing user code. A `.map(fn)` is kept
as a numbered reference to `fn`; the worker, which has the DAG loaded, applies it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from minimap.exceptions import DefinitionError

if TYPE_CHECKING:
    from minimap.authoring.taskflow import Task

NOTSET: Any = object()


class XComArg:
    """The output of a task, or a transform of outputs, used as an argument to another task."""

    def iter_tasks(self) -> Iterator[Task]:
        """The tasks whose outputs this refers to."""
        raise NotImplementedError

    def to_expr(self) -> dict[str, Any]:
        """This reference as a JSON expression (see `minimap.rules.expansion`)."""
        raise NotImplementedError

    def map(self, fn: Callable[[Any], Any]) -> XComArg:
        """Apply `fn` to each element, lazily, in the consuming task's process (Airflow's `.map`)."""
        return MapXComArg(self, fn)

    def zip(self, *others: Any, fillvalue: Any = NOTSET) -> XComArg:
        """Pair elements index by index; stops at the shortest unless `fillvalue` is given."""
        return ZipXComArg((self, *others), fillvalue)

    def concat(self, *others: Any) -> XComArg:
        """Chain this sequence and `others` into one."""
        return ConcatXComArg((self, *others))

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("an XComArg is not iterable at definition time; map over it with .expand()")

    def __rshift__(self, other: Any) -> Any:
        for t in self.iter_tasks():
            t >> other
        return other

    def __lshift__(self, other: Any) -> Any:
        for t in self.iter_tasks():
            t << other
        return other

    def __rrshift__(self, other: Any) -> XComArg:
        self << other
        return self

    def __rlshift__(self, other: Any) -> XComArg:
        self >> other
        return self


class PlainXComArg(XComArg):
    """The return value of one task."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def iter_tasks(self) -> Iterator[Task]:
        yield self.task

    def to_expr(self) -> dict[str, Any]:
        return {"ref": self.task.task_id}

    def __repr__(self) -> str:
        return f"XComArg({self.task.task_id!r})"

    def __getitem__(self, key: str) -> XComArg:
        return KeyXComArg(self.task, key)


class KeyXComArg(XComArg):
    """`output["key"]`: one value of a task that returns a dict with `multiple_outputs=True`."""

    def __init__(self, task: Task, key: str) -> None:
        if not task.multiple_outputs:
            raise DefinitionError(
                f"{task.defined_at}: {task.task_id}[{key!r}] needs multiple_outputs=True on task {task.task_id} "
                "(or a dict return annotation); else pass the whole output and index it in the consuming task"
            )
        if not isinstance(key, str):
            raise DefinitionError(f"{task.defined_at}: {task.task_id}[{key!r}]: the key must be a string")
        self.task = task
        self.key = key

    def iter_tasks(self) -> Iterator[Task]:
        yield self.task

    def to_expr(self) -> dict[str, Any]:
        return {"ref": self.task.task_id, "key": self.key}

    def __repr__(self) -> str:
        return f"XComArg({self.task.task_id!r}, key={self.key!r})"


class MapXComArg(XComArg):
    """`source.map(fn)`: fn applied to each element when the consumer runs."""

    def __init__(self, source: XComArg, fn: Callable[[Any], Any]) -> None:
        if not callable(fn):
            raise DefinitionError(f"XComArg.map() takes a function, got {type(fn).__name__}")
        self.source = source
        self.fn = fn
        task = next(source.iter_tasks(), None)
        if task is None:
            raise DefinitionError("XComArg.map() needs an upstream output to map over")
        self.fn_id = task.dag.register_map_fn(fn)

    def iter_tasks(self) -> Iterator[Task]:
        yield from self.source.iter_tasks()

    def to_expr(self) -> dict[str, Any]:
        return {"map": self.fn_id, "src": self.source.to_expr()}


class ZipXComArg(XComArg):
    """`a.zip(b, ...)`: tuples of the i-th elements."""

    def __init__(self, args: tuple[Any, ...], fillvalue: Any) -> None:
        self.args = args
        self.fillvalue = fillvalue

    def iter_tasks(self) -> Iterator[Task]:
        for a in self.args:
            if isinstance(a, XComArg):
                yield from a.iter_tasks()

    def to_expr(self) -> dict[str, Any]:
        expr: dict[str, Any] = {"zip": [to_expr(a, "zip()") for a in self.args]}
        if self.fillvalue is not NOTSET:
            expr["fill"] = literal(self.fillvalue, "zip(fillvalue=)")
        return expr


class ConcatXComArg(XComArg):
    """`a.concat(b, ...)`: one sequence after another."""

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args

    def iter_tasks(self) -> Iterator[Task]:
        for a in self.args:
            if isinstance(a, XComArg):
                yield from a.iter_tasks()

    def to_expr(self) -> dict[str, Any]:
        return {"concat": [to_expr(a, "concat()") for a in self.args]}


def literal(value: Any, what: str) -> Any:
    """`value` checked to be storable as JSON, which is how minimap keeps arguments."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise DefinitionError(
            f"{what} is a {type(value).__name__}, which cannot be stored as JSON ({e}); "
            "pass JSON values (str, number, bool, None, list, dict) or an upstream output"
        ) from None
    return value


def contains_xcomarg(value: Any) -> bool:
    """Whether `value` holds an XComArg anywhere inside lists, tuples or dicts."""
    if isinstance(value, XComArg):
        return True
    if isinstance(value, (list, tuple)):
        return any(contains_xcomarg(v) for v in value)
    if isinstance(value, dict):
        return any(contains_xcomarg(v) for v in value.values())
    return False


def to_expr(value: Any, what: str) -> dict[str, Any]:
    """Any argument value as an expression: literals stay literal; XComArgs become references."""
    if isinstance(value, XComArg):
        return value.to_expr()
    if isinstance(value, (list, tuple)) and contains_xcomarg(value):
        return {"list": [to_expr(v, what) for v in value]}
    if isinstance(value, dict) and contains_xcomarg(value):
        return {"dict": {str(k): to_expr(v, what) for k, v in value.items()}}
    return {"lit": literal(list(value) if isinstance(value, tuple) else value, what)}


def iter_xcomargs(value: Any) -> Iterator[XComArg]:
    """Every XComArg inside `value`."""
    if isinstance(value, XComArg):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from iter_xcomargs(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_xcomargs(v)
