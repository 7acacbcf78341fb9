"""`DAG`: a named graph of tasks, and its frozen structure (the snapshot the scheduler works from)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from minimap.authoring import keywords
from minimap.authoring.ids import check_id
from minimap.authoring.node import Task
from minimap.authoring.settings import seconds, where
from minimap.authoring.xcomarg import XComArg, iter_xcomargs, literal, to_expr
from minimap.defaults import MAX_MAP_LENGTH
from minimap.exceptions import DefinitionError
from minimap.rules.timetable import check_schedule, zone_name
from minimap.snapshot import DagSpec, GroupSpec, TaskSpec


class DagContext:
    """The DAG that `with DAG(...)` blocks have opened, and the DAGs made while a file loads."""

    _stack: ClassVar[list[DAG]] = []
    collecting: ClassVar[list[DAG] | None] = None

    @classmethod
    def current(cls) -> DAG | None:
        return cls._stack[-1] if cls._stack else None


class DAG:
    """A DAG: tasks, their dependencies, and run-level limits. Takes Airflow's keywords (see keywords.py)."""

    def __init__(self, dag_id: str, **kwargs: Any) -> None:
        at = where()
        check_id("dag", dag_id, at)
        keywords.check(kwargs, keywords.DAG_KEYWORDS, "DAG", at)
        keywords.check_default_args(kwargs.get("default_args") or {}, at)
        if kwargs.get("max_active_tasks") is None and kwargs.get("concurrency") is not None:
            kwargs["max_active_tasks"] = kwargs["concurrency"]  # Airflow's old name
        if kwargs.get("max_map_length") is None:
            kwargs["max_map_length"] = MAX_MAP_LENGTH
        for name in ("max_active_runs", "max_active_tasks", "max_map_length"):
            value = kwargs.setdefault(name, 16)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DefinitionError(f"{at}: {name} must be a whole number >= 1, got {value!r}")
        self.dag_id = dag_id
        self.description: str | None = kwargs.get("description")
        self.schedule = _schedule(kwargs, at)
        self.start_date = _date(kwargs.get("start_date"), "start_date", at)
        self.end_date = _date(kwargs.get("end_date"), "end_date", at)
        self.timezone = zone_name(kwargs.get("start_date"))
        self.catchup = bool(kwargs.get("catchup", False))
        self.paused_upon_creation = bool(kwargs.get("is_paused_upon_creation") or False)
        if self.schedule is not None and self.start_date is None:
            raise DefinitionError(
                f"{at}: DAG {dag_id} has schedule={self.schedule!r} but no start_date: give "
                "start_date=datetime(...) (Airflow 2 requires it too), or schedule=None"
            )
        self.tags = [str(t) for t in kwargs.get("tags") or []]
        self.default_args = dict(kwargs.get("default_args") or {})
        self.max_active_runs: int = kwargs["max_active_runs"]
        self.max_active_tasks: int = kwargs["max_active_tasks"]
        self.max_map_length: int = kwargs["max_map_length"]
        self.params = dict(kwargs.get("params") or {})
        self.user_defined_macros = dict(kwargs.get("user_defined_macros") or {})
        self.user_defined_filters = dict(kwargs.get("user_defined_filters") or {})
        self.template_undefined = kwargs.get("template_undefined")
        try:
            self.dagrun_timeout = seconds(kwargs.get("dagrun_timeout"), "dagrun_timeout")
        except DefinitionError as e:
            raise DefinitionError(f"{at}: {e}") from None
        # Airflow keywords minimap stores with each run but does not act on yet (a warning says so)
        self.other = {k: kwargs[k] for k in ("dagrun_timeout",) if kwargs.get(k) is not None}
        self.warnings = _warnings(self, at)
        self.fileloc = at.rsplit(":", 1)[0]
        self.tasks: dict[str, Task] = {}
        self.groups: dict[str, Any] = {}  # group_id -> TaskGroup, in definition order
        self.map_fns: list[Callable[[Any], Any]] = []
        if DagContext.collecting is not None:
            DagContext.collecting.append(self)

    def __enter__(self) -> DAG:
        DagContext._stack.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        DagContext._stack.pop()
        if exc[0] is None:
            self.check_acyclic()

    def __repr__(self) -> str:
        return f"<DAG {self.dag_id}: {len(self.tasks)} tasks>"

    # --- building -----------------------------------------------------------------------------

    def unique_task_id(self, name: str) -> str:
        """`name`, or `name__1`, `name__2`... when a function is used more than once (as Airflow)."""
        if name not in self.tasks:
            return name
        n = 1
        while f"{name}__{n}" in self.tasks:
            n += 1
        return f"{name}__{n}"

    def add_task(self, task: Task) -> None:
        if task.task_id in self.groups:
            raise DefinitionError(f"{task.defined_at}: {task.task_id!r} is already the id of a task group")
        self.tasks[task.task_id] = task

    def unique_group_id(self, group_id: str, at: str, numbered: bool) -> str:
        """`group_id`, numbered (`g__1`...) when taken and `numbered`, as Airflow's add_suffix_on_collision."""
        if group_id not in self.groups and group_id not in self.tasks:
            return group_id
        if not numbered:
            raise DefinitionError(f"{at}: DAG {self.dag_id} already has a task group or task {group_id!r}")
        n = 1
        while f"{group_id}__{n}" in self.groups or f"{group_id}__{n}" in self.tasks:
            n += 1
        return f"{group_id}__{n}"

    def add_edge(self, up: Task, down: Task) -> None:
        if up.dag is not self or down.dag is not self:
            raise DefinitionError(f"{where()}: {up.task_id} and {down.task_id} belong to different DAGs")
        up.downstream_ids.add(down.task_id)
        down.upstream_ids.add(up.task_id)

    def register_map_fn(self, fn: Callable[[Any], Any]) -> int:
        """Number `fn` (used by `.map()`); numbering is by definition order, so a reload agrees."""
        self.map_fns.append(fn)
        return len(self.map_fns) - 1

    def get_task(self, task_id: str) -> Task:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise DefinitionError(f"DAG {self.dag_id} has no task {task_id!r}") from None

    def check_acyclic(self) -> None:
        """Raise if the dependencies form a cycle, naming it."""
        state: dict[str, int] = {}

        def visit(tid: str, path: list[str]) -> None:
            state[tid] = 1
            for down in sorted(self.tasks[tid].downstream_ids):
                if state.get(down) == 1:
                    cycle = path[path.index(down) :] + [down] if down in path else [tid, down]
                    raise DefinitionError(
                        f"{self.tasks[down].defined_at}: DAG {self.dag_id} has a cycle: {' >> '.join(cycle)}"
                    )
                if down not in state:
                    visit(down, path + [down])
            state[tid] = 2

        for tid in self.tasks:
            if tid not in state:
                visit(tid, [tid])

    # --- freezing -----------------------------------------------------------------------------

    def mapped_over(self) -> set[str]:
        """Tasks whose output some task fans out over (their results must be lists or dicts)."""
        found: set[str] = set()
        for t in self.tasks.values():
            sources: list[Any] = []
            if t.expand_input is not None:
                sources.extend(t.expand_input.values())
            if t.expand_kwargs_input is not None:
                sources.append(t.expand_kwargs_input)
            for value in t.op_kwargs.values():
                sources.extend(_transformed(value))
            for value in sources:
                for arg in iter_xcomargs(value):
                    found.update(x.task_id for x in arg.iter_tasks())
        for g in self.groups.values():
            for value in [*(g.expand_input or {}).values(), g.expand_kwargs_input]:
                for arg in iter_xcomargs(value):
                    found.update(x.task_id for x in arg.iter_tasks())
        return found

    def spec(self) -> DagSpec:
        """The DAG's frozen structure: all the scheduler ever needs to know of it."""
        self.check_acyclic()
        mapped_over = self.mapped_over()
        tasks = {}
        for tid, t in self.tasks.items():
            what = f"an argument of task {tid}"
            lanes = t.group.lane_group() if t.group is not None else None
            settings = dict(t.settings)
            if lanes is not None and settings.get("map_index_template") is None:
                settings["map_index_template"] = lanes.map_index_template  # the group's template names the lanes
            tasks[tid] = TaskSpec(
                task_id=tid,
                upstream=tuple(sorted(t.upstream_ids)),
                downstream=tuple(sorted(t.downstream_ids)),
                mapped_over=tid in mapped_over,
                kwargs={k: to_expr(v, what) for k, v in t.op_kwargs.items()},
                expand=None if t.expand_input is None else {k: to_expr(v, what) for k, v in t.expand_input.items()},
                expand_kwargs=None if t.expand_kwargs_input is None else to_expr(t.expand_kwargs_input, what),
                group=lanes.group_id if lanes is not None else None,
                **settings,
            )
        return DagSpec(
            dag_id=self.dag_id,
            fileloc=self.fileloc,
            max_active_runs=self.max_active_runs,
            max_active_tasks=self.max_active_tasks,
            max_map_length=self.max_map_length,
            params=literal(self.params, f"params of DAG {self.dag_id}"),
            tasks=tasks,
            schedule=self.schedule,
            start_date=self.start_date,
            end_date=self.end_date,
            timezone=self.timezone,
            catchup=self.catchup,
            paused_upon_creation=self.paused_upon_creation,
            dagrun_timeout=self.dagrun_timeout,
            tags=tuple(self.tags),
            groups={gid: _group_spec(g) for gid, g in self.groups.items()},
        )

    def snapshot(self) -> dict[str, Any]:
        """The frozen structure as the JSON data stored with each run (`DagSpec.from_json` reads it)."""
        return self.spec().to_dict()

    def test(self, run_conf: dict[str, Any] | None = None, *, conf: dict[str, Any] | None = None) -> Any:
        """Run this DAG in-process on a throwaway SQLite database, print each instance's outcome, and
        return the finished run (as Airflow's `dag.test(run_conf=...)`: from a script, pytest or a debugger)."""
        from minimap.authoring.dagtest import run_test

        return run_test(self, {**(run_conf or {}), **(conf or {})})


def _group_spec(g: Any) -> GroupSpec:
    what = f"an argument of task group {g.group_id}"
    if not g.mapped:  # `with TaskGroup(..., tolerated_failures=...)`: lane options on a group that has no lanes
        for name in ("tolerated_failures", "max_active_lanes", "map_index_template"):
            if getattr(g, name) is not None:
                raise DefinitionError(
                    f"{g.defined_at}: {name} applies to a mapped task group (.expand() or .expand_kwargs())"
                )
    return GroupSpec(
        group_id=g.group_id,
        tasks=tuple(t.task_id for t in g.tasks),
        parent=g.parent.group_id if g.parent is not None else None,
        mapped=g.mapped,
        expand=None if g.expand_input is None else {k: to_expr(v, what) for k, v in g.expand_input.items()},
        expand_kwargs=None if g.expand_kwargs_input is None else to_expr(g.expand_kwargs_input, what),
        max_active_lanes=g.max_active_lanes,
        map_index_template=g.map_index_template,
        tolerated_failures=g.tolerated_failures,
    )


def _transformed(value: Any) -> Iterator[XComArg]:
    """XComArgs inside `value` that are mapped, zipped or concatenated (their sources must be lists)."""
    from minimap.authoring.xcomarg import ConcatXComArg, MapXComArg, ZipXComArg

    for arg in iter_xcomargs(value):
        if isinstance(arg, (MapXComArg, ZipXComArg, ConcatXComArg)):
            yield arg


def _schedule(kwargs: dict[str, Any], at: str) -> str | None:
    """`schedule` (or Airflow's older `schedule_interval`/`timetable`) as stored: a cron expression or preset
    as written, a timedelta as "every N seconds"; datasets and timetables are refused."""
    given = [k for k in ("schedule", "schedule_interval", "timetable") if kwargs.get(k) is not None]
    if len(given) > 1:
        raise DefinitionError(f"{at}: DAG got both {given[0]} and {given[1]}; give schedule only")
    value = kwargs.get(given[0]) if given else None
    try:
        if value is None:
            return None
        if isinstance(value, str):
            return check_schedule(value.strip())
    except DefinitionError as e:
        raise DefinitionError(f"{at}: {e}") from None
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise DefinitionError(f"{at}: schedule={value!r} must be a positive timedelta")
        secs = value.total_seconds()
        return f"every {secs:.0f} seconds" if secs.is_integer() else f"every {secs!r} seconds"
    raise DefinitionError(
        f"{at}: schedule={value!r} is not supported yet: use a cron expression, a preset such as '@daily', "
        "a timedelta, or None"
    )


def _date(value: Any, name: str, at: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise DefinitionError(f"{at}: {name} must be a datetime, got {type(value).__name__}")


def _warnings(dag: DAG, at: str) -> list[str]:
    """What the DAG asks that minimap stores but does not act on yet: one line each, shown when it loads."""
    found = []
    if dag.dagrun_timeout is not None:
        found.append(
            f"{at}: DAG {dag.dag_id} has dagrun_timeout, which minimap stores but does not enforce yet: "
            "bound each task with execution_timeout"
        )
    return found


def dag(dag_id: Any = None, **kwargs: Any) -> Any:
    """`@dag` / `@dag(schedule=..., ...)`: a function whose body defines a DAG; calling it makes the DAG
    (Airflow's decorator form of `DAG`, with the same keywords; dag_id defaults to the function's name)."""
    at = where()
    keywords.check(kwargs, keywords.DAG_KEYWORDS, "@dag", at)
    if callable(dag_id):
        return _dag_factory(dag_id, None, kwargs, at)
    return lambda fn: _dag_factory(fn, dag_id, kwargs, at)


def _dag_factory(fn: Callable[..., Any], dag_id: str | None, kwargs: dict[str, Any], at: str) -> Callable[[], DAG]:
    if inspect.signature(fn).parameters:
        raise DefinitionError(
            f"{at}: @dag function {fn.__name__} takes parameters, which minimap does not turn into DAG params "
            "yet: give DAG(params={...}) and read context['params'] in the tasks"
        )

    name = dag_id or kwargs.get("dag_id") or fn.__name__
    rest = {k: v for k, v in kwargs.items() if k != "dag_id"}

    @functools.wraps(fn)
    def factory() -> DAG:
        with DAG(name, **rest) as made:
            fn()
        return made

    return factory


__all__ = ["DAG", "DagContext", "dag", "seconds"]
