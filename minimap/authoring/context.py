"""What a running task knows about itself: Airflow's context keys, `ti`, `dag_run`, `get_current_context()`."""

from __future__ import annotations

import contextvars
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from minimap.exceptions import MinimapError

_current: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("minimap_context")

# fmt: off
#: The context keys minimap gives a task (Airflow's names, plus minimap's own dag_id, task_id...).
PROVIDED = frozenset({
    "conf", "dag", "dag_id", "dag_run", "data_interval_end", "data_interval_start", "ds", "ds_nodash",
    "execution_date", "failed_map_indexes", "idempotency_key", "logical_date", "map_index", "params", "run_id",
    "task", "task_id",
    "task_instance", "task_instance_key_str", "templates_dict", "test_mode", "ti", "try_number", "ts", "ts_nodash",
    "ts_nodash_with_tz",
})
#: Airflow 2.10's other context keys: a task parameter named so would silently get nothing here, so it is refused.
NOT_PROVIDED = frozenset({
    "conn", "exception", "expanded_ti_count", "inlet_events", "inlets", "macros", "map_index_template", "next_ds",
    "next_ds_nodash", "next_execution_date", "outlet_events", "outlets", "prev_data_interval_end_success",
    "prev_data_interval_start_success", "prev_ds", "prev_ds_nodash", "prev_end_date_success",
    "prev_execution_date", "prev_execution_date_success", "prev_start_date_success", "reason", "tomorrow_ds",
    "tomorrow_ds_nodash", "triggering_dataset_events", "var", "yesterday_ds", "yesterday_ds_nodash",
})
# fmt: on


def idempotency_key(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The same for every try and clear of one instance, different for every other instance."""
    raw = f"{dag_id}\x1f{run_id}\x1f{task_id}\x1f{map_index}"
    return f"{dag_id}.{task_id}.{map_index}." + hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class DagRunInfo:
    """`context["dag_run"]`: the run this attempt belongs to."""

    dag_id: str
    run_id: str
    conf: dict[str, Any]
    logical_date: datetime
    run_type: str = "manual"
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None

    @property
    def execution_date(self) -> datetime:
        return self.logical_date


@dataclass
class TaskInstanceInfo:
    """`context["ti"]`: this attempt of one task instance, and the results of the tasks it waits on."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    xcom_reader: Callable[[str, list[int] | None], list[tuple[int, Any]]] | None = field(default=None, repr=False)
    known_tasks: frozenset[str] | None = None  # the DAG's task ids
    mapped_tasks: frozenset[str] | None = None  # those that are mapped (their pull is a list)
    lane_tasks: frozenset[str] = frozenset()  # the steps of this task's mapped group (their pull: this lane's)

    def xcom_pull(
        self,
        task_ids: str | list[str] | None = None,
        key: str = "return_value",
        map_indexes: int | list[int] | None = None,
        default: Any = None,
        **unsupported: Any,
    ) -> Any:
        """An upstream task's result (a mapped one's: its results by map_index), as Airflow's `ti.xcom_pull`."""
        from minimap.authoring.xcompull import pull

        return pull(self, task_ids, key, map_indexes, default, unsupported)

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        raise MinimapError(
            f"ti.xcom_push({key!r}, ...) is not supported: return the value from the task "
            "(with multiple_outputs=True to give downstream tasks several values by key)"
        )


def build_context(
    dag: Any,
    task: Any,
    ti: TaskInstanceInfo,
    conf: dict[str, Any],
    logical_date: datetime | None,
    data_interval: tuple[datetime, datetime] | None = None,
    run_type: str = "manual",
) -> dict[str, Any]:
    """The context of one attempt, with Airflow's keys (see PROVIDED); without a data interval (a manual run)
    it starts and ends at the logical date, as Airflow's."""
    when = logical_date or datetime.now(timezone.utc)
    start, end = data_interval or (when, when)
    params = {**dag.params, **getattr(task, "params", {}), **conf}
    run = DagRunInfo(ti.dag_id, ti.run_id, conf, when, run_type, start, end)
    ts = when.isoformat()
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index,
        "try_number": ti.try_number,
        "conf": conf,
        "params": params,
        "idempotency_key": idempotency_key(ti.dag_id, ti.run_id, ti.task_id, ti.map_index),
        "dag": dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "task_instance_key_str": f"{ti.dag_id}__{ti.task_id}__{when.strftime('%Y%m%d')}",
        "dag_run": run,
        "logical_date": when,
        "execution_date": when,
        "data_interval_start": start,
        "data_interval_end": end,
        "ds": when.strftime("%Y-%m-%d"),
        "ds_nodash": when.strftime("%Y%m%d"),
        "ts": ts,
        "ts_nodash": when.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": ts.replace("-", "").replace(":", ""),
        "test_mode": False,
    }


def call_with_context(fn: Callable[..., Any], kwargs: dict[str, Any], context: dict[str, Any]) -> Any:
    """Call `fn` with `kwargs`, adding the context keys it asks for (all of them for `**context`), as Airflow."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        extra = {k: v for k, v in context.items() if k not in kwargs and k not in params}
        extra.update({k: context[k] for k in params if k in context and k not in kwargs})
    else:
        extra = {k: context[k] for k in params if k in context and k not in kwargs}
    return fn(**kwargs, **extra)


def get_current_context() -> dict[str, Any]:
    """The running task's context: Airflow's keys (ti, run_id, params, logical_date, ds, dag_run...)."""
    try:
        return _current.get()
    except LookupError:
        raise MinimapError("get_current_context() works only inside a running task") from None


def set_context(context: dict[str, Any]) -> contextvars.Token[dict[str, Any]]:
    """Make `context` the current one (the worker does this around each attempt)."""
    return _current.set(context)


def reset_context(token: contextvars.Token[dict[str, Any]]) -> None:
    _current.reset(token)
