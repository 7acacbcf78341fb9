"""`@task_group`: a function whose tasks form a group -- called plainly, or mapped with `.expand()`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from minimap.authoring import keywords
from minimap.authoring.node import GroupContext
from minimap.authoring.partial import check_expand, check_expand_kwargs, check_names, check_partial
from minimap.authoring.settings import where
from minimap.authoring.taskgroup import GROUP_KEYWORDS, LaneArg, TaskGroup, lanes_cap, lanes_tolerance
from minimap.exceptions import DefinitionError


class TaskGroupDecorator:
    """What `@task_group` returns: call it for a plain group, `.expand()` for a mapped one."""

    def __init__(self, fn: Callable[..., Any], kwargs: Mapping[str, Any], at: str) -> None:
        keywords.check(kwargs, GROUP_KEYWORDS, "@task_group", at)
        lanes_cap(kwargs.get("max_active_lanes"), at)
        lanes_tolerance(kwargs.get("tolerated_failures"), at)
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
        for name in ("max_active_lanes", "map_index_template", "tolerated_failures"):
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
        check_names(self.signature, names, what, at, f"task group {self.fn.__name__}")

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
        check_partial(self.constants, kwargs, at)
        self.decorator._check_names(kwargs, "partial", at)
        return replace(self, constants={**self.constants, **kwargs})

    def expand(self, **kwargs: Any) -> Any:
        at = where()
        if kwargs:
            self.decorator._check_names(kwargs, "expand", at)
        check_expand(self.constants, kwargs, at, f"task group {self.decorator.fn.__name__}", refused=(LaneArg,))
        return self.decorator._mapped(dict(self.constants), at, expand_input=dict(kwargs))

    def expand_kwargs(self, value: Any) -> Any:
        at = where()
        kind = f"task group {self.decorator.fn.__name__}"
        check_expand_kwargs(value, at, kind, items=(dict,), refused=(LaneArg,))
        for item in value if isinstance(value, (list, tuple)) else ():
            self.decorator._check_names(item, "expand_kwargs", at)
        return self.decorator._mapped(dict(self.constants), at, expand_kwargs_input=value)


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
