"""Operators, as Airflow writes them: `BaseOperator` for custom ones, `.partial().expand()`, templated fields.

An operator made in a DAG file becomes a task node at once (after its `__init__`, so a subclass's own
fields are seen). The task process copies it, puts in the upstream outputs its template fields refer to,
renders those fields with Jinja and calls `execute(context)`. A mapped operator is built there, per instance,
from its `partial()` arguments and the instance's mapped ones.
"""

from __future__ import annotations

import contextvars
import copy
import difflib
import inspect
import os
from collections.abc import Sequence
from typing import Any

from minimap.authoring import keywords
from minimap.authoring.node import Task, add_task, current_dag
from minimap.authoring.settings import where
from minimap.authoring.templating import environment, render
from minimap.authoring.xcomarg import XComArg, contains_xcomarg
from minimap.exceptions import DefinitionError

_at_runtime: contextvars.ContextVar[bool] = contextvars.ContextVar("minimap_operator_at_runtime", default=False)


class _OperatorMeta(type):
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        op = super().__call__(*args, **kwargs)
        if not _at_runtime.get():
            op._register()
        return op


class BaseOperator(metaclass=_OperatorMeta):
    """Subclass it with `__init__(self, ..., **kwargs)` (calling `super().__init__(**kwargs)`) and `execute`."""

    template_fields: Sequence[str] = ()
    template_ext: Sequence[str] = ()

    def __init__(self, task_id: str, **kwargs: Any) -> None:
        self._at = where()
        keywords.check_task(kwargs, type(self).__name__, self._at)
        self.task_id = task_id
        self._keywords = dict(kwargs)
        for name, value in kwargs.items():
            setattr(self, name, value)
        self.node: Task | None = None

    def execute(self, context: dict[str, Any]) -> Any:
        """Do the work of one attempt; the return value is the task's result."""
        raise NotImplementedError(f"{type(self).__name__} must define execute(self, context)")

    def _register(self) -> None:
        dag = current_dag(self.task_id, self._at, self._keywords.get("dag"))
        if self.task_id in dag.tasks:
            raise DefinitionError(f"{self._at}: DAG {dag.dag_id} already has a task {self.task_id!r}")
        stored = {f: getattr(self, f) for f in self.template_fields if contains_xcomarg(getattr(self, f, None))}
        self.node = add_task(dag, self.task_id, self._keywords, self._at, self._run, stored)

    def _run(self, kwargs: dict[str, Any], context: dict[str, Any]) -> Any:
        op = copy.copy(self)
        for name, value in kwargs.items():
            setattr(op, name, value)
        return op._render_and_execute(context)

    def _render_and_execute(self, context: dict[str, Any]) -> Any:
        env = environment(context.get("dag"))
        folder = os.path.dirname(getattr(context.get("dag"), "fileloc", "") or ".")
        for name in self.template_fields:
            value = getattr(self, name, None)
            if isinstance(value, str) and self.template_ext and value.endswith(tuple(self.template_ext)):
                with open(os.path.join(folder, value)) as f:  # as Airflow: a template file beside the DAG
                    value = f.read()
            setattr(self, name, render(value, context, env))
        return self.execute(context)

    # --- the task node's face: >>, .output -----------------------------------------------------

    @property
    def output(self) -> XComArg:
        return self._node().output

    def __getitem__(self, key: str) -> XComArg:
        return self._node()[key]

    def _node(self) -> Task:
        if self.node is None:
            raise DefinitionError(f"operator {self.task_id} is not in a DAG")
        return self.node

    def __rshift__(self, other: Any) -> Any:
        return self._node() >> other

    def __lshift__(self, other: Any) -> Any:
        return self._node() << other

    def __rrshift__(self, other: Any) -> Any:
        self._node().__rrshift__(other)
        return self

    def __rlshift__(self, other: Any) -> Any:
        self._node().__rlshift__(other)
        return self

    def set_downstream(self, other: Any) -> None:
        self._node().set_downstream(other)

    def set_upstream(self, other: Any) -> None:
        self._node().set_upstream(other)

    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        """Arguments shared by every mapped instance (task_id among them); map the rest with `.expand()`."""
        at = where()
        if "task_id" not in kwargs:
            raise DefinitionError(f"{at}: {cls.__name__}.partial() needs task_id=")
        _check_names(cls, {k: v for k, v in kwargs.items() if k != "task_id"}, "partial", at, operator_keywords=True)
        return OperatorPartial(cls, kwargs, at)


def _init_params(cls: type) -> set[str]:
    """The named parameters of `cls.__init__` and of its bases' up to BaseOperator."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is BaseOperator or klass is object:
            break
        init = klass.__dict__.get("__init__")
        if init is not None:
            names.update(
                p.name
                for p in inspect.signature(init).parameters.values()
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            )
    names.discard("self")
    return names


def _check_names(cls: type, given: dict[str, Any], what: str, at: str, operator_keywords: bool) -> None:
    own = _init_params(cls)
    base = {k: v for k, v in given.items() if k not in own}
    if operator_keywords:  # the operator's own arguments are suggestions for a typo too
        table = {**keywords.TASK_KEYWORDS, **dict.fromkeys(own, keywords.Keyword(keywords.HONOURED))}
        keywords.check(base, table, f"{cls.__name__}.{what}()", at)
    elif base:
        name = sorted(base)[0]
        close = difflib.get_close_matches(name, own, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DefinitionError(f"{at}: unknown argument {name!r} to {cls.__name__}.{what}(){hint}")


class OperatorPartial:
    """`SomeOperator.partial(task_id=..., **constants)`: waits for `.expand()` or `.expand_kwargs()`."""

    def __init__(self, cls: type[BaseOperator], kwargs: dict[str, Any], at: str) -> None:
        self.cls, self.kwargs, self.at = cls, kwargs, at

    def expand(self, **mapped: Any) -> Task:
        """One instance per element (cross product of several arguments), as Airflow's mapped operators."""
        at = where()
        if not mapped:
            raise DefinitionError(f"{at}: expand() of {self.cls.__name__} needs at least one argument to map over")
        _check_names(self.cls, mapped, "expand", at, operator_keywords=False)
        twice = sorted(set(mapped) & set(self.kwargs))
        if twice:
            raise DefinitionError(f"{at}: argument {twice[0]!r} is given to both partial() and expand()")
        for key, value in mapped.items():
            if not isinstance(value, (list, tuple, dict, XComArg)):
                raise DefinitionError(
                    f"{at}: expand() argument {key!r} of {self.cls.__name__} is a {type(value).__name__}; "
                    "expand() maps over a list, a dict or an upstream output"
                )
        return self._add(at, expand_input=dict(mapped))

    def expand_kwargs(self, value: Any) -> Task:
        """One instance per dict of keyword arguments."""
        at = where()
        if not isinstance(value, (list, tuple, XComArg)):
            raise DefinitionError(f"{at}: expand_kwargs() takes a list of dicts or an upstream output")
        return self._add(at, expand_kwargs_input=value)

    def _add(self, at: str, **mapping: Any) -> Task:
        task_id = self.kwargs["task_id"]
        dag = current_dag(task_id, at, self.kwargs.get("dag"))
        if task_id in dag.tasks:
            raise DefinitionError(f"{at}: DAG {dag.dag_id} already has a task {task_id!r}")
        stored = {k: v for k, v in self.kwargs.items() if contains_xcomarg(v)}
        local = {k: v for k, v in self.kwargs.items() if k not in stored}
        base = {k: v for k, v in local.items() if k in keywords.TASK_KEYWORDS and k != "task_id"}
        cls = self.cls

        def runner(kwargs: dict[str, Any], context: dict[str, Any]) -> Any:
            token = _at_runtime.set(True)
            try:
                op = cls(**{**local, **kwargs})
            finally:
                _at_runtime.reset(token)
            return op._render_and_execute(context)

        return add_task(dag, task_id, base, at, runner, stored, **mapping)
