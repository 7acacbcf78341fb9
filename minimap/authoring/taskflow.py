"""`@task` and the task node it creates: calls, `partial()`, `expand()`, `expand_kwargs()`, `>>`."""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from minimap.authoring.xcomarg import PlainXComArg, XComArg, iter_xcomargs
from minimap.exceptions import DefinitionError
from minimap.rules.triggerrules import TRIGGER_RULES

if TYPE_CHECKING:
    from minimap.authoring.dag import DAG

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def where() -> str:
    """`file:line` of the innermost caller outside minimap: the line of the DAG file being defined."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_PACKAGE_DIR + os.sep) and not frame.f_code.co_filename.startswith("<"):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"


def seconds(value: Any, name: str) -> float | None:
    """A duration given as seconds or a timedelta, as seconds."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    raise DefinitionError(f"{name} must be seconds or a timedelta, got {value!r}")


@dataclass(frozen=True)
class TaskOptions:
    """What `@task(...)` and `default_args` say about how a task runs."""

    retries: int = 0
    retry_delay: float = 300.0  # Airflow's default: five minutes
    retry_exponential_backoff: bool = False
    max_retry_delay: float | None = None
    trigger_rule: str = "all_success"
    max_active_tis_per_dag: int | None = None
    max_active_tis_per_dagrun: int | None = None
    execution_timeout: float | None = None
    map_index_template: str | None = None

    @classmethod
    def build(cls, given: Mapping[str, Any]) -> TaskOptions:
        """Options from keyword arguments; keys minimap does not act on (owner, email...) are ignored."""
        known = {k: v for k, v in given.items() if k in cls.__dataclass_fields__}
        for name in ("retry_delay", "max_retry_delay", "execution_timeout"):
            if name in known:
                known[name] = seconds(known[name], name)
        if known.get("retry_delay") is None:
            known.pop("retry_delay", None)
        rule = str(getattr(known.get("trigger_rule"), "value", known.get("trigger_rule", "all_success")))
        if rule not in TRIGGER_RULES:
            raise DefinitionError(f"unknown trigger_rule {rule!r}; use one of {', '.join(TRIGGER_RULES)}")
        known["trigger_rule"] = rule
        for name in ("retries", "max_active_tis_per_dag", "max_active_tis_per_dagrun"):
            value = known.get(name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise DefinitionError(f"{name} must be a whole number >= 0, got {value!r}")
        return cls(**known)


@dataclass(eq=False)
class Task:
    """One node of a DAG: a function, its arguments, and how it is mapped."""

    task_id: str
    fn: Callable[..., Any]
    dag: DAG
    options: TaskOptions
    defined_at: str
    op_kwargs: dict[str, Any] = field(default_factory=dict)
    expand_input: dict[str, Any] | None = None
    expand_kwargs_input: Any = None
    upstream_ids: set[str] = field(default_factory=set)
    downstream_ids: set[str] = field(default_factory=set)

    @property
    def mapped(self) -> bool:
        """Whether this task fans out into one instance per element."""
        return self.expand_input is not None or self.expand_kwargs_input is not None

    @property
    def output(self) -> XComArg:
        """This task's return value, as an argument for others."""
        return PlainXComArg(self)

    def set_downstream(self, other: Any) -> None:
        """Make `other` (a task, an XComArg or a list of them) wait for this task."""
        for t in _tasks_of(other):
            self.dag.add_edge(self, t)

    def set_upstream(self, other: Any) -> None:
        """Make this task wait for `other`."""
        for t in _tasks_of(other):
            self.dag.add_edge(t, self)

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> Task:
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> Task:
        self.set_downstream(other)
        return self

    def arguments(self) -> list[Any]:
        """Every argument value given to this task, to find the outputs it consumes."""
        values = list(self.op_kwargs.values())
        if self.expand_input is not None:
            values.extend(self.expand_input.values())
        if self.expand_kwargs_input is not None:
            values.append(self.expand_kwargs_input)
        return values


def _tasks_of(other: Any) -> list[Task]:
    if isinstance(other, Task):
        return [other]
    if isinstance(other, XComArg):
        return list(other.iter_tasks())
    if isinstance(other, (list, tuple, set)):
        return [t for o in other for t in _tasks_of(o)]
    raise DefinitionError(f"cannot set a dependency on {type(other).__name__}; use a task or its output")


class TaskDecorator:
    """What `@task` returns: call it to add a task, or `.partial()`/`.expand()` to add a mapped one."""

    def __init__(self, fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
        self.fn = fn
        self.kwargs = dict(kwargs)
        self.signature = inspect.signature(fn)
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def override(self, **kwargs: Any) -> TaskDecorator:
        """The same function with other task options (Airflow's `.override(task_id=...)`)."""
        return TaskDecorator(self.fn, {**self.kwargs, **kwargs})

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        at = where()
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise DefinitionError(f"{at}: {self.fn.__name__}() {e}") from None
        return self._add(dict(bound.arguments), at).output

    def partial(self, **kwargs: Any) -> PartialTask:
        """Fix some arguments for every mapped instance; map the rest with `.expand()`."""
        at = where()
        self._check_names(kwargs, "partial", at)
        return PartialTask(self, dict(kwargs))

    def expand(self, **kwargs: Any) -> XComArg:
        """Add a task mapped over the cross product of `kwargs` (the last keyword varies fastest)."""
        return PartialTask(self, {}).expand(**kwargs)

    def expand_kwargs(self, value: Any) -> XComArg:
        """Add a task mapped over a list of keyword dicts."""
        return PartialTask(self, {}).expand_kwargs(value)

    def _check_names(self, names: Mapping[str, Any], what: str, at: str) -> None:
        params = self.signature.parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return
        unknown = sorted(set(names) - set(params))
        if unknown:
            raise DefinitionError(
                f"{at}: {what}() got unknown argument {unknown[0]!r} for task {self.fn.__name__}; "
                f"it takes {', '.join(params) or 'no arguments'}"
            )

    def _add(self, op_kwargs: dict[str, Any], at: str, **mapping: Any) -> Task:
        from minimap.authoring.dag import DagContext

        dag = DagContext.current()
        if dag is None:
            raise DefinitionError(f"{at}: task {self.fn.__name__} is used outside a `with DAG(...)` block")
        try:
            options = TaskOptions.build({**dag.default_args, **self.kwargs})
        except DefinitionError as e:
            raise DefinitionError(f"{at}: task {self.fn.__name__}: {e}") from None
        task_id = dag.unique_task_id(str(self.kwargs.get("task_id") or self.fn.__name__))
        task = Task(task_id, self.fn, dag, options, at, op_kwargs, **mapping)
        dag.add_task(task)
        for value in task.arguments():
            for arg in iter_xcomargs(value):
                for up in arg.iter_tasks():
                    dag.add_edge(up, task)
        return task


@dataclass(frozen=True)
class PartialTask:
    """`fn.partial(**constants)`: waits for `.expand()` or `.expand_kwargs()`."""

    decorator: TaskDecorator
    constants: dict[str, Any]

    def partial(self, **kwargs: Any) -> PartialTask:
        """More constants; a name given twice is an error."""
        at = where()
        twice = sorted(set(kwargs) & set(self.constants))
        if twice:
            raise DefinitionError(f"{at}: partial() got argument {twice[0]!r} twice")
        self.decorator._check_names(kwargs, "partial", at)
        return replace(self, constants={**self.constants, **kwargs})

    def expand(self, **kwargs: Any) -> XComArg:
        """Map over the cross product of `kwargs`, in Airflow's order."""
        at = where()
        name = self.decorator.fn.__name__
        if not kwargs:
            raise DefinitionError(f"{at}: expand() of task {name} needs at least one argument to map over")
        self.decorator._check_names(kwargs, "expand", at)
        both = sorted(set(kwargs) & set(self.constants))
        if both:
            raise DefinitionError(f"{at}: argument {both[0]!r} of task {name} is given to both partial() and expand()")
        for key, value in kwargs.items():
            if not isinstance(value, (list, tuple, dict, XComArg)):
                raise DefinitionError(
                    f"{at}: expand() argument {key!r} of task {name} is a {type(value).__name__}; "
                    "expand() maps over a list, a dict or an upstream output"
                )
        return self.decorator._add(dict(self.constants), at, expand_input=dict(kwargs)).output

    def expand_kwargs(self, value: Any) -> XComArg:
        """Map over a list of dicts, each holding the keyword arguments of one instance."""
        at = where()
        name = self.decorator.fn.__name__
        if not isinstance(value, (list, tuple, XComArg)):
            raise DefinitionError(
                f"{at}: expand_kwargs() of task {name} takes a list of dicts or an upstream output, "
                f"got {type(value).__name__}"
            )
        if isinstance(value, (list, tuple)):
            for item in value:
                if not isinstance(item, (dict, XComArg)):
                    raise DefinitionError(
                        f"{at}: expand_kwargs() of task {name} got a {type(item).__name__}, not a dict"
                    )
                if isinstance(item, dict):
                    self.decorator._check_names(item, "expand_kwargs", at)
        return self.decorator._add(dict(self.constants), at, expand_kwargs_input=value).output


def task(fn: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """Turn a function into a task: `@task` or `@task(retries=3, map_index_template=...)`."""
    if fn is not None:
        if not callable(fn):
            raise DefinitionError(f"@task decorates a function, got {type(fn).__name__}")
        return TaskDecorator(fn, kwargs)
    return lambda f: TaskDecorator(f, kwargs)
