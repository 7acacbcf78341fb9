"""`Task`: one node of a DAG, however it was written (`@task` function, operator, mapped or not)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from minimap.authoring.ids import check_id
from minimap.authoring.settings import task_settings
from minimap.authoring.xcomarg import KeyXComArg, PlainXComArg, XComArg, iter_xcomargs
from minimap.exceptions import DefinitionError

if TYPE_CHECKING:
    from minimap.authoring.dag import DAG
    from minimap.authoring.taskgroup import TaskGroup

#: How the task process runs an attempt: (keyword arguments, context) -> the result.
Runner = Callable[[dict[str, Any], dict[str, Any]], Any]


class Chainable:
    """`a >> b`, `a << b` and their reflections (`[x, y] >> a`) for whatever has set_upstream and set_downstream:
    a task and a task group."""

    def set_upstream(self, other: Any) -> None:
        raise NotImplementedError

    def set_downstream(self, other: Any) -> None:
        raise NotImplementedError

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return self


@dataclass(eq=False)
class Task(Chainable):
    """One node of a DAG: how it runs, its stored arguments, and how it is mapped."""

    task_id: str
    dag: DAG
    settings: dict[str, Any]  # TaskSpec fields set by keywords (retries, trigger_rule...)
    defined_at: str
    runner: Runner
    op_kwargs: dict[str, Any] = field(default_factory=dict)  # stored arguments: JSON values or upstream outputs
    expand_input: dict[str, Any] | None = None
    expand_kwargs_input: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    do_xcom_push: bool = True
    templates_dict: dict[str, Any] | None = None
    upstream_ids: set[str] = field(default_factory=set)
    downstream_ids: set[str] = field(default_factory=set)
    group: TaskGroup | None = None  # the innermost task group the task was defined in

    @property
    def mapped(self) -> bool:
        """Whether this task fans out into one instance per element."""
        return self.expand_input is not None or self.expand_kwargs_input is not None

    @property
    def multiple_outputs(self) -> bool:
        return bool(self.settings.get("multiple_outputs"))

    @property
    def output(self) -> XComArg:
        """This task's return value, as an argument for others."""
        return PlainXComArg(self)

    def __getitem__(self, key: str) -> XComArg:
        return KeyXComArg(self, key)

    def set_downstream(self, other: Any) -> None:
        """Make `other` (a task, an XComArg or a list of them) wait for this task."""
        for t in tasks_of(other):
            self.dag.add_edge(self, t)

    def set_upstream(self, other: Any) -> None:
        """Make this task wait for `other`."""
        for t in tasks_of(other, upstream=True):
            self.dag.add_edge(t, self)

    def arguments(self) -> list[Any]:
        """Every stored argument value, to find the outputs it consumes."""
        values = list(self.op_kwargs.values())
        if self.expand_input is not None:
            values.extend(self.expand_input.values())
        if self.expand_kwargs_input is not None:
            values.append(self.expand_kwargs_input)
        return values


class GroupContext:
    """The task groups that `with` blocks (or `@task_group` calls) have opened, innermost last."""

    _stack: ClassVar[list[TaskGroup]] = []

    @classmethod
    def current(cls) -> TaskGroup | None:
        return cls._stack[-1] if cls._stack else None


def tasks_of(other: Any, upstream: bool = False) -> list[Task]:
    """The tasks `other` stands for: a task, an operator, an output, a task group (its first tasks, or its
    last ones when it is `upstream`), or a list of them."""
    if isinstance(other, Task):
        return [other]
    edge = getattr(other, "edge_tasks", None)
    if edge is not None:
        return list(edge(upstream))
    node = getattr(other, "node", None)
    if isinstance(node, Task):
        return [node]
    if isinstance(other, XComArg):
        return list(other.iter_tasks())
    if isinstance(other, (list, tuple, set)):
        return [t for o in other for t in tasks_of(o, upstream)]
    raise DefinitionError(f"cannot set a dependency on {type(other).__name__}; use a task or its output")


def current_dag(what: str, at: str, dag: Any = None) -> DAG:
    """The DAG a new task belongs to: `dag=` if given, else the open `with DAG(...)` block."""
    from minimap.authoring.dag import DAG, DagContext

    found = dag if dag is not None else DagContext.current()
    if found is None:
        raise DefinitionError(f"{at}: task {what} is used outside a `with DAG(...)` block")
    if not isinstance(found, DAG):
        raise DefinitionError(f"{at}: dag= of task {what} is a {type(found).__name__}, not a DAG")
    return found


def add_task(
    dag: DAG,
    name: str,
    keywords: Mapping[str, Any],
    at: str,
    runner: Runner,
    op_kwargs: dict[str, Any],
    **more: Any,
) -> Task:
    """Add a task named `name` (numbered if taken) to `dag`, with edges from the outputs it consumes."""
    group = GroupContext.current()
    if group is not None and group.dag is dag:
        name = group.child_id(name)
        group.check_task(name, at, more)
    else:
        group = None
    given = {**dag.default_args, **(group.all_default_args() if group else {}), **keywords}
    try:
        settings = task_settings(given)
    except DefinitionError as e:
        raise DefinitionError(f"{at}: task {name}: {e}") from None
    task_id = check_id("task", dag.unique_task_id(name), at)
    if "tolerated_failures" in settings and all(more.get(k) is None for k in ("expand_input", "expand_kwargs_input")):
        if "tolerated_failures" in keywords:  # from default_args it applies to the DAG's mapped tasks only
            raise DefinitionError(
                f"{at}: task {task_id}: tolerated_failures applies to a mapped task (.expand() or .expand_kwargs())"
            )
        del settings["tolerated_failures"]
    task = Task(
        task_id, dag, settings, at, runner, op_kwargs,
        params=dict(given.get("params") or {}),
        do_xcom_push=bool(given.get("do_xcom_push", True)),
        templates_dict=given.get("templates_dict"),
        group=group,
        **more,
    )  # fmt: skip
    from minimap.authoring.taskgroup import check_lane_args

    check_lane_args(task)
    dag.add_task(task)
    if group is not None:
        group.add(task)
    for value in task.arguments():
        for arg in iter_xcomargs(value):
            for up in arg.iter_tasks():
                dag.add_edge(up, task)
    return task
