"""`@task`: a function as a task -- calls, `partial()`, `expand()`, `expand_kwargs()`, `.override()`."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from minimap.authoring import keywords
from minimap.authoring.context import NOT_PROVIDED, PROVIDED, call_with_context
from minimap.authoring.node import Task, add_task, current_dag
from minimap.authoring.partial import check_expand, check_expand_kwargs, check_names, check_partial
from minimap.authoring.settings import seconds, where
from minimap.authoring.templating import environment, render
from minimap.authoring.xcomarg import XComArg, contains_xcomarg
from minimap.exceptions import DefinitionError

__all__ = ["PartialTask", "Task", "TaskDecorator", "seconds", "task", "where"]


def returns_mapping(fn: Callable[..., Any]) -> bool:
    """Whether `fn` is annotated to return a dict (Airflow then sets multiple_outputs=True)."""
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # noqa: BLE001 -- an unresolvable annotation says nothing (Airflow does the same)
        return False
    origin = typing.get_origin(hint) or hint
    return isinstance(origin, type) and issubclass(origin, Mapping)


class TaskDecorator:
    """What `@task` returns: call it to add a task, or `.partial()`/`.expand()` to add a mapped one."""

    def __init__(self, fn: Callable[..., Any], kwargs: Mapping[str, Any], at: str) -> None:
        for name in ("op_args", "op_kwargs"):
            if name in kwargs:
                raise DefinitionError(f"{at}: {name} is not used by @task: pass the arguments by calling the task")
        keywords.check_task(kwargs, "@task", at)
        self.fn = fn
        self.kwargs = dict(kwargs)
        if "multiple_outputs" not in self.kwargs and returns_mapping(fn):
            self.kwargs["multiple_outputs"] = True  # as Airflow infers from a dict return annotation
        self.signature = inspect.signature(fn)
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def override(self, **kwargs: Any) -> TaskDecorator:
        """The same function with other task options (Airflow's `.override(task_id=...)`)."""
        return TaskDecorator(self.fn, {**self.kwargs, **kwargs}, where())

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        at = where()
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError as e:
            raise DefinitionError(f"{at}: {self.fn.__name__}() {e}") from None
        self._check_missing(bound.arguments, at)
        arguments = dict(bound.arguments)
        for p in self.signature.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                arguments.update(arguments.pop(p.name, {}))
            elif p.kind is p.VAR_POSITIONAL and arguments.get(p.name):
                raise DefinitionError(f"{at}: {self.fn.__name__}(): pass *{p.name} values as keyword arguments")
        return self._add(arguments, at).output

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
        check_names(self.signature, names, what, at, f"task {self.fn.__name__}")

    def _check_missing(self, given: Mapping[str, Any], at: str, mapped: bool = False) -> None:
        """Every parameter without a default must be given, or be a context key minimap fills in."""
        for p in self.signature.parameters.values():
            if p.name in given or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            if p.name in NOT_PROVIDED:
                raise DefinitionError(
                    f"{at}: task {self.fn.__name__} asks for the context key {p.name!r}, which minimap does not "
                    f"provide; it provides {', '.join(sorted(PROVIDED))}"
                )
            if p.default is p.empty and p.name not in PROVIDED and not mapped:
                raise DefinitionError(f"{at}: {self.fn.__name__}() missing a required argument: {p.name!r}")

    def _add(self, op_kwargs: dict[str, Any], at: str, **mapping: Any) -> Task:
        name = str(self.kwargs.get("task_id") or self.fn.__name__)
        dag = current_dag(name, at, self.kwargs.get("dag"))
        fn = self.fn
        templated = _literal_names(op_kwargs, **mapping)

        def runner(kwargs: dict[str, Any], context: dict[str, Any]) -> Any:
            # as Airflow: arguments written in the DAG file are templates; upstream outputs are not
            names = kwargs.keys() if "*" in templated else templated.intersection(kwargs)
            if names:  # a Jinja environment costs ~15 µs: build it only for arguments that are templates
                env = environment(context.get("dag"))
                kwargs = {k: render(v, context, env) if k in names else v for k, v in kwargs.items()}
            return call_with_context(fn, kwargs, context)

        return add_task(dag, name, self.kwargs, at, runner, op_kwargs, **mapping)


def _literal_names(op_kwargs: Mapping[str, Any], **mapping: Any) -> set[str]:
    """The arguments given as literals in the DAG file ("*": all of them, for a literal expand_kwargs list)."""
    names = {k for k, v in op_kwargs.items() if not contains_xcomarg(v)}
    names.update(k for k, v in (mapping.get("expand_input") or {}).items() if not contains_xcomarg(v))
    rows = mapping.get("expand_kwargs_input")
    if rows is not None and not contains_xcomarg(rows):
        names.add("*")
    return names


@dataclass(frozen=True)
class PartialTask:
    """`fn.partial(**constants)`: waits for `.expand()` or `.expand_kwargs()`."""

    decorator: TaskDecorator
    constants: dict[str, Any]

    def partial(self, **kwargs: Any) -> PartialTask:
        """More constants; a name given twice is an error."""
        at = where()
        check_partial(self.constants, kwargs, at)
        self.decorator._check_names(kwargs, "partial", at)
        return replace(self, constants={**self.constants, **kwargs})

    def expand(self, **kwargs: Any) -> XComArg:
        """Map over the cross product of `kwargs`, in Airflow's order."""
        at = where()
        kind = f"task {self.decorator.fn.__name__}"
        if kwargs:
            self.decorator._check_names(kwargs, "expand", at)
        check_expand(self.constants, kwargs, at, kind)
        self.decorator._check_missing({**self.constants, **kwargs}, at)
        return self.decorator._add(dict(self.constants), at, expand_input=dict(kwargs)).output

    def expand_kwargs(self, value: Any) -> XComArg:
        """Map over a list of dicts, each holding the keyword arguments of one instance."""
        at = where()
        check_expand_kwargs(value, at, f"task {self.decorator.fn.__name__}", items=(dict, XComArg))
        for item in value if isinstance(value, (list, tuple)) else ():
            if isinstance(item, dict):
                self.decorator._check_names(item, "expand_kwargs", at)
        self.decorator._check_missing(self.constants, at, mapped=True)
        return self.decorator._add(dict(self.constants), at, expand_kwargs_input=value).output


#: Airflow's other `@task.<kind>` decorators, refused by name.
_OTHER_DECORATORS = frozenset({
    "bash", "branch", "branch_external_python", "branch_virtualenv", "docker", "external_python", "kubernetes",
    "pyspark", "run_if", "sensor", "setup", "short_circuit", "skip_if", "sql", "teardown", "virtualenv",
})  # fmt: skip


class _TaskFactory:
    """`@task`, `@task(...)` and `@task.python`; other `@task.<kind>` decorators are refused in one line."""

    def __call__(self, fn: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        """Turn a function into a task: `@task` or `@task(retries=3, map_index_template=...)`."""
        at = where()
        if fn is not None:
            if not callable(fn):
                raise DefinitionError(f"{at}: @task decorates a function, got {type(fn).__name__}")
            return TaskDecorator(fn, kwargs, at)
        keywords.check_task(kwargs, "@task", at)
        return lambda f: TaskDecorator(f, kwargs, at)

    @property
    def python(self) -> _TaskFactory:
        return self

    def __getattr__(self, kind: str) -> Any:
        if kind not in _OTHER_DECORATORS:
            raise AttributeError(kind)
        instead = {"bash": "BashOperator", "branch": "a trigger_rule and SkipTask"}.get(kind, "@task")
        raise DefinitionError(f"{where()}: @task.{kind} is not supported yet: use {instead}")


task = _TaskFactory()
