"""`@task_group`: tasks grouped under one id, plain (structure, `>>`) or mapped into lanes.

A mapped group (`group_fn.expand(item=...)`) calls the function once, at definition time, with a `LaneArg`
for each mapped argument; the tasks it defines become the steps of every lane. Lane i is map index i of
each step: `b[i]` waits for `a[i]` only (Airflow's mapped task group, decided per lane).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from minimap.authoring import keywords
from minimap.authoring.ids import check_id
from minimap.authoring.node import Chainable, GroupContext, Task, current_dag
from minimap.authoring.settings import where
from minimap.authoring.xcomarg import XComArg, iter_xcomargs, literal
from minimap.exceptions import DefinitionError
from minimap.rules.tolerance import tolerance

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
    "tolerated_failures": keywords._k(keywords.HONOURED),  # minimap's own: failed lanes a mapped group may have
}


class TaskGroup(Chainable):
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
        self.max_active_lanes = lanes_cap(kwargs.get("max_active_lanes"), at)
        self.map_index_template: str | None = kwargs.get("map_index_template")
        self.tolerated_failures: int | str | None = lanes_tolerance(kwargs.get("tolerated_failures"), at)
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


def lanes_tolerance(value: Any, at: str) -> int | str | None:
    """A mapped group's tolerated_failures (failed lanes), validated at load time as a task's."""
    if value is None:
        return None
    try:
        tolerance(value)
    except DefinitionError as e:
        raise DefinitionError(f"{at}: {e}") from None
    return value  # type: ignore[no-any-return]


def lanes_cap(value: Any, at: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DefinitionError(f"{at}: max_active_lanes must be a whole number >= 1, got {value!r}")
    return value
