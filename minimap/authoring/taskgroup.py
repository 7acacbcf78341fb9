"""`@task_group`: tasks grouped under one id, plain (structure, `>>`) or mapped into lanes.

A mapped group (`group_fn.expand(item=...)`) calls the function once, at definition time, with a `LaneArg`
for each mapped argument; the tasks it defines become the steps of every lane. Lane i is map index i of
each step: `b[i]` waits for `a[i]` only (Airflow's mapped task group, decided per lane).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from minimap.authoring import keywords
from minimap.authoring.ids import check_id
from minimap.authoring.node import GroupContext, Task, current_dag
from minimap.authoring.settings import where
from minimap.authoring.xcomarg import XComArg, iter_xcomargs, literal
from minimap.exceptions import DefinitionError

#: Keywords of Airflow's `@task_group` / `TaskGroup`, plus minimap's lane options.
GROUP_KEYWORDS: dict[str, keywords.Keyword] = {
    "group_id": keywords._k(keywords.HONOURED),
    "prefix_group_id": keywords._k(keywords.HONOURED),
    "default_args": keywords._k(keywords.HONOURED),
    "dag": keywords._k(keywords.HONOURED),
    "add_suffix_on_collision": keywords._k(keywords.HONOURED),
    "tooltip": keywords._k(keywords.NO_EFFECT),
    "ui_color": keywords._k(keywords.NO_EFFECT),
    "ui_fgcolor": keywords._k(keywords.NO_EFFECT),
    "parent_group": keywords._k(keywords.AT_DEFAULT, "open the inner group inside the outer one's function"),
    "max_active_lanes": keywords._k(keywords.HONOURED),
    "map_index_template": keywords._k(keywords.HONOURED),
}


class TaskGroup:
    """A named set of tasks: their ids are prefixed with the group's, and `>>` binds to its first/last tasks."""

    def __init__(self, group_id: str, dag: Any = None, **kwargs: Any) -> None:
        at = str(kwargs.pop("_at", None) or where())
        keywords.check(kwargs, GROUP_KEYWORDS, "TaskGroup", at)
        keywords.check_default_args(kwargs.get("default_args") or {}, at)
        self.dag = current_dag(f"group {group_id}", at, dag)
        outer = GroupContext.current()
        self.parent = outer if outer is not None and outer.dag is self.dag else None
        check_id("group", group_id, at)
        name = self.parent.child_id(group_id) if self.parent else group_id
        self.group_id = self.dag.unique_group_id(name, at, bool(kwargs.get("add_suffix_on_collision")))
        self.prefix = bool(kwargs.get("prefix_group_id", True))
        self.default_args = dict(kwargs.get("default_args") or {})
        self.defined_at = at
        self.tasks: list[Task] = []
        self.mapped = False
        self.expand_input: dict[str, Any] | None = None
        self.expand_kwargs_input: Any = None
        self.max_active_lanes = _lanes_cap(kwargs.get("max_active_lanes"), at)
        self.map_index_template: str | None = kwargs.get("map_index_template")
        self.dag.groups[self.group_id] = self

    def __repr__(self) -> str:
        return f"<TaskGroup {self.group_id}: {len(self.tasks)} tasks>"

    def __enter__(self) -> TaskGroup:
        GroupContext._stack.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        GroupContext._stack.pop()

    # --- building -------------------------------------------------------------------------------

    def child_id(self, name: str) -> str:
        """The id of a task or group named `name` inside this group."""
        return f"{self.group_id}.{name}" if self.prefix else name

    def lane_group(self) -> TaskGroup | None:
        """The mapped group whose lanes this group's tasks run in: itself or an ancestor."""
        group: TaskGroup | None = self
        while group is not None and not group.mapped:
            group = group.parent
        return group

    def all_default_args(self) -> dict[str, Any]:
        """default_args of the enclosing groups, the inner ones winning."""
        outer = self.parent.all_default_args() if self.parent else {}
        return {**outer, **self.default_args}

    def check_task(self, task_id: str, at: str, mapping: Mapping[str, Any]) -> None:
        """Refuse a mapped task inside a mapped group (lanes are the mapping there)."""
        lanes = self.lane_group()
        if lanes is not None and any(mapping.get(k) is not None for k in ("expand_input", "expand_kwargs_input")):
            raise DefinitionError(
                f"{at}: task {task_id} is mapped inside the mapped task group {lanes.group_id}, which minimap does "
                "not support: call the task plainly (each lane runs it once), or map it outside the group"
            )

    def add(self, task: Task) -> None:
        group: TaskGroup | None = self
        while group is not None:
            group.tasks.append(task)
            group = group.parent

    # --- edges ----------------------------------------------------------------------------------

    def edge_tasks(self, upstream: bool) -> Iterator[Task]:
        """The tasks an edge binds to: the group's last tasks when the group is upstream, else its first."""
        ids = {t.task_id for t in self.tasks}
        for t in self.tasks:
            inner = t.downstream_ids if upstream else t.upstream_ids
            if not inner & ids:
                yield t

    def _check_not_empty(self) -> None:
        if not self.tasks:
            raise DefinitionError(f"{where()}: task group {self.group_id} has no tasks to set a dependency on")

    def set_downstream(self, other: Any) -> None:
        self._check_not_empty()
        for t in self.edge_tasks(upstream=True):
            t.set_downstream(other)

    def set_upstream(self, other: Any) -> None:
        self._check_not_empty()
        for t in self.edge_tasks(upstream=False):
            t.set_upstream(other)

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> TaskGroup:
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> TaskGroup:
        self.set_downstream(other)
        return self


def check_lane_args(task: Task) -> None:
    """Refuse a task that uses a mapped group's argument outside that group."""
    lanes = task.group.lane_group() if task.group is not None else None
    for value in task.arguments():
        for arg in iter_xcomargs(value):
            if isinstance(arg, LaneArg) and arg.group is not lanes:
                raise DefinitionError(
                    f"{task.defined_at}: task {task.task_id} uses argument {arg.name!r} of the mapped task "
                    f"group {arg.group.group_id} outside that group; pass it to tasks inside the group"
                )


class LaneArg(XComArg):
    """One argument of a mapped group's function: lane i's value (Airflow's MappedArgument)."""

    def __init__(self, group: TaskGroup, name: str, default: Any = inspect.Parameter.empty) -> None:
        self.group = group
        self.name = name
        self.default = default

    def iter_tasks(self) -> Iterator[Task]:
        source = self.group.expand_input[self.name] if self.group.expand_input else self.group.expand_kwargs_input
        for arg in iter_xcomargs(source):
            yield from arg.iter_tasks()

    def to_expr(self) -> dict[str, Any]:
        expr: dict[str, Any] = {"lane": self.name}
        if self.default is not inspect.Parameter.empty:
            expr["default"] = literal(self.default, f"the default of argument {self.name!r}")
        return expr

    def __repr__(self) -> str:
        return f"LaneArg({self.group.group_id!r}, {self.name!r})"


class TaskGroupDecorator:
    """What `@task_group` returns: call it for a plain group, `.expand()` for a mapped one."""

    def __init__(self, fn: Callable[..., Any], kwargs: Mapping[str, Any], at: str) -> None:
        keywords.check(kwargs, GROUP_KEYWORDS, "@task_group", at)
        _lanes_cap(kwargs.get("max_active_lanes"), at)
        self.fn = fn
        self.kwargs = dict(kwargs)
        self.signature = inspect.signature(fn)
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def override(self, **kwargs: Any) -> TaskGroupDecorator:
        """The same function with other group options (`.override(group_id=...)`)."""
        return TaskGroupDecorator(self.fn, {**self.kwargs, **kwargs}, where())

    def _group(self, at: str) -> TaskGroup:
        options = {"add_suffix_on_collision": True, **self.kwargs}  # as Airflow's decorator: a reuse is numbered
        group_id = options.pop("group_id", None) or self.fn.__name__
        return TaskGroup(group_id, _at=at, **options)

    def _call(self, group: TaskGroup, arguments: dict[str, Any], at: str) -> Any:
        try:
            bound = self.signature.bind(**arguments)
        except TypeError as e:
            raise DefinitionError(f"{at}: task group {self.fn.__name__}() {e}") from None
        with group:
            returned = self.fn(*bound.args, **bound.kwargs)
        if not group.tasks:
            raise DefinitionError(f"{at}: task group {group.group_id} defines no tasks")
        return group if returned is None else returned  # as Airflow: `>>` binds to what the function returns

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        at = where()
        for name in ("max_active_lanes", "map_index_template"):
            if self.kwargs.get(name) is not None:
                raise DefinitionError(f"{at}: {name} applies to a mapped task group: use .expand() on it")
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise DefinitionError(f"{at}: task group {self.fn.__name__}() {e}") from None
        return self._call(self._group(at), dict(bound.arguments), at)

    def partial(self, **kwargs: Any) -> PartialGroup:
        """Fix some arguments for every lane; map the rest with `.expand()`."""
        self._check_names(kwargs, "partial", where())
        return PartialGroup(self, dict(kwargs))

    def expand(self, **kwargs: Any) -> Any:
        """A lane per element of the cross product of `kwargs` (the last keyword varies fastest)."""
        return PartialGroup(self, {}).expand(**kwargs)

    def expand_kwargs(self, value: Any) -> Any:
        """A lane per dict of keyword arguments."""
        return PartialGroup(self, {}).expand_kwargs(value)

    def _check_names(self, names: Mapping[str, Any], what: str, at: str) -> None:
        params = self.signature.parameters
        unknown = sorted(set(names) - set(params))
        if unknown and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            close = difflib.get_close_matches(unknown[0], params, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DefinitionError(
                f"{at}: {what}() got unknown argument {unknown[0]!r} for task group {self.fn.__name__}{hint}; "
                f"it takes {', '.join(params) or 'no arguments'}"
            )

    def _mapped(self, constants: dict[str, Any], at: str, **mapping: Any) -> Any:
        outer = GroupContext.current()
        lanes = outer.lane_group() if outer is not None else None
        if lanes is not None:
            raise DefinitionError(
                f"{at}: task group {self.fn.__name__} is mapped inside the mapped task group {lanes.group_id}, "
                "which minimap does not support: map one of them only"
            )
        group = self._group(at)
        group.mapped = True
        group.expand_input = mapping.get("expand_input")
        group.expand_kwargs_input = mapping.get("expand_kwargs_input")
        arguments = dict(constants)
        for p in self.signature.parameters.values():
            if p.name in arguments or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            if group.expand_input is not None and p.name not in group.expand_input:
                continue  # its default applies; a missing one is refused by the call below
            arguments[p.name] = LaneArg(group, p.name, p.default if group.expand_input is None else p.empty)
        return self._call(group, arguments, at)


@dataclass(frozen=True)
class PartialGroup:
    """`group_fn.partial(**constants)`: waits for `.expand()` or `.expand_kwargs()`."""

    decorator: TaskGroupDecorator
    constants: dict[str, Any]

    def partial(self, **kwargs: Any) -> PartialGroup:
        at = where()
        twice = sorted(set(kwargs) & set(self.constants))
        if twice:
            raise DefinitionError(f"{at}: partial() got argument {twice[0]!r} twice")
        self.decorator._check_names(kwargs, "partial", at)
        return replace(self, constants={**self.constants, **kwargs})

    def expand(self, **kwargs: Any) -> Any:
        at = where()
        name = self.decorator.fn.__name__
        if not kwargs:
            raise DefinitionError(f"{at}: expand() of task group {name} needs at least one argument to map over")
        self.decorator._check_names(kwargs, "expand", at)
        both = sorted(set(kwargs) & set(self.constants))
        if both:
            raise DefinitionError(
                f"{at}: argument {both[0]!r} of task group {name} is given to both partial() and expand()"
            )
        for key, value in kwargs.items():
            if not isinstance(value, (list, tuple, dict, XComArg)) or isinstance(value, LaneArg):
                raise DefinitionError(
                    f"{at}: expand() argument {key!r} of task group {name} is a {type(value).__name__}; "
                    "expand() maps over a list, a dict or an upstream output"
                )
        return self.decorator._mapped(dict(self.constants), at, expand_input=dict(kwargs))

    def expand_kwargs(self, value: Any) -> Any:
        at = where()
        name = self.decorator.fn.__name__
        if not isinstance(value, (list, tuple, XComArg)) or isinstance(value, LaneArg):
            raise DefinitionError(
                f"{at}: expand_kwargs() of task group {name} takes a list of dicts or an upstream output, "
                f"got {type(value).__name__}"
            )
        if isinstance(value, (list, tuple)):
            for item in value:
                if not isinstance(item, dict):
                    raise DefinitionError(
                        f"{at}: expand_kwargs() of task group {name} got a {type(item).__name__}, not a dict"
                    )
                self.decorator._check_names(item, "expand_kwargs", at)
        return self.decorator._mapped(dict(self.constants), at, expand_kwargs_input=value)


def _lanes_cap(value: Any, at: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DefinitionError(f"{at}: max_active_lanes must be a whole number >= 1, got {value!r}")
    return value


def task_group(fn: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """`@task_group` / `@task_group(group_id=..., max_active_lanes=...)`: a function whose tasks form a group."""
    at = where()
    if isinstance(fn, str):  # Airflow's @task_group("group_id")
        kwargs["group_id"], fn = fn, None
    if fn is not None:
        if not callable(fn):
            raise DefinitionError(f"{at}: @task_group decorates a function, got {type(fn).__name__}")
        return TaskGroupDecorator(fn, kwargs, at)
    keywords.check(kwargs, GROUP_KEYWORDS, "@task_group", at)
    return lambda f: TaskGroupDecorator(f, kwargs, at)
