"""`DAG`: a named graph of tasks, and its frozen structure (the snapshot the scheduler works from)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from minimap.authoring.taskflow import Task, seconds, where
from minimap.authoring.xcomarg import XComArg, iter_xcomargs, literal, to_expr
from minimap.defaults import MAX_MAP_LENGTH
from minimap.exceptions import DefinitionError

SNAPSHOT_VERSION = 1


class DagContext:
    """The DAG that `with DAG(...)` blocks have opened, and the DAGs made while a file loads."""

    _stack: ClassVar[list[DAG]] = []
    collecting: ClassVar[list[DAG] | None] = None

    @classmethod
    def current(cls) -> DAG | None:
        return cls._stack[-1] if cls._stack else None


class DAG:
    """A DAG: tasks, their dependencies, and run-level limits. Takes Airflow's common keywords."""

    def __init__(
        self,
        dag_id: str,
        *,
        description: str | None = None,
        schedule: Any = None,
        start_date: Any = None,
        catchup: bool = False,
        tags: list[str] | None = None,
        default_args: dict[str, Any] | None = None,
        max_active_runs: int = 16,
        max_active_tasks: int = 16,
        max_map_length: int | None = None,
        params: dict[str, Any] | None = None,
        **other: Any,
    ) -> None:
        if not isinstance(dag_id, str) or not dag_id:
            raise DefinitionError(f"{where()}: DAG needs a dag_id (a non-empty string)")
        for name, value in (("max_active_runs", max_active_runs), ("max_active_tasks", max_active_tasks)):
            if not isinstance(value, int) or value < 1:
                raise DefinitionError(f"{where()}: {name} must be a whole number >= 1, got {value!r}")
        self.dag_id = dag_id
        self.description = description
        self.schedule = schedule
        self.start_date = start_date
        self.catchup = catchup
        self.tags = list(tags or [])
        self.default_args = dict(default_args or {})
        self.max_active_runs = max_active_runs
        self.max_active_tasks = max_active_tasks
        self.max_map_length = max_map_length or MAX_MAP_LENGTH
        self.params = dict(params or {})
        self.other = other  # Airflow keywords minimap stores but does not act on
        self.fileloc = where().rsplit(":", 1)[0]
        self.tasks: dict[str, Task] = {}
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
        self.tasks[task.task_id] = task

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
        return found

    def snapshot(self) -> dict[str, Any]:
        """The DAG's structure as plain JSON data: all the scheduler ever needs to know of it."""
        self.check_acyclic()
        mapped_over = self.mapped_over()
        tasks = {}
        for tid, t in self.tasks.items():
            o = t.options
            what = f"an argument of task {tid}"
            tasks[tid] = {
                "upstream": sorted(t.upstream_ids),
                "downstream": sorted(t.downstream_ids),
                "trigger_rule": o.trigger_rule,
                "retries": o.retries,
                "retry_delay": o.retry_delay,
                "retry_exponential_backoff": o.retry_exponential_backoff,
                "max_retry_delay": o.max_retry_delay,
                "execution_timeout": o.execution_timeout,
                "max_active_tis_per_dag": o.max_active_tis_per_dag,
                "max_active_tis_per_dagrun": o.max_active_tis_per_dagrun,
                "map_index_template": o.map_index_template,
                "mapped_over": tid in mapped_over,
                "kwargs": {k: to_expr(v, what) for k, v in t.op_kwargs.items()},
                "expand": None if t.expand_input is None else {k: to_expr(v, what) for k, v in t.expand_input.items()},
                "expand_kwargs": None if t.expand_kwargs_input is None else to_expr(t.expand_kwargs_input, what),
            }
        return {
            "version": SNAPSHOT_VERSION,
            "dag_id": self.dag_id,
            "fileloc": self.fileloc,
            "max_active_runs": self.max_active_runs,
            "max_active_tasks": self.max_active_tasks,
            "max_map_length": self.max_map_length,
            "params": literal(self.params, f"params of DAG {self.dag_id}"),
            "tasks": tasks,
        }


def _transformed(value: Any) -> Iterator[XComArg]:
    """XComArgs inside `value` that are mapped, zipped or concatenated (their sources must be lists)."""
    from minimap.authoring.xcomarg import ConcatXComArg, MapXComArg, ZipXComArg

    for arg in iter_xcomargs(value):
        if isinstance(arg, (MapXComArg, ZipXComArg, ConcatXComArg)):
            yield arg


__all__ = ["DAG", "DagContext", "seconds"]
