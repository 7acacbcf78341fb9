"""`ti.xcom_pull`: Airflow's shapes of an upstream result, read from the run's stored results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from minimap.exceptions import MinimapError

if TYPE_CHECKING:
    from minimap.authoring.context import TaskInstanceInfo

RETURN_KEY = "return_value"


def pull(
    ti: TaskInstanceInfo,
    task_ids: str | list[str] | None,
    key: str,
    map_indexes: int | list[int] | None,
    default: Any,
    unsupported: dict[str, Any],
) -> Any:
    """As Airflow: one task's value (a mapped task's: its values by map_index), or a list for several."""
    if unsupported:
        name = sorted(unsupported)[0]
        raise MinimapError(f"ti.xcom_pull({name}=...) is not supported: pull from this run's tasks only")
    if task_ids is None:
        raise MinimapError("ti.xcom_pull() needs task_ids: name the task whose result you want")
    if ti.xcom_reader is None:
        raise MinimapError("ti.xcom_pull() works only inside a task run by a minimap worker")
    if isinstance(task_ids, str) and map_indexes is None and task_ids in ti.lane_tasks:
        map_indexes = ti.map_index  # a step of the same mapped group: this lane's value, as Airflow
    if not isinstance(task_ids, str):
        return [v for t in task_ids for v in _values(ti, t, key, _as_list(map_indexes), default)]
    if isinstance(map_indexes, int):
        found = _values(ti, task_ids, key, [map_indexes], default)
        return found[0] if found else default
    mapped = ti.mapped_tasks is not None and task_ids in ti.mapped_tasks
    values = _values(ti, task_ids, key, _as_list(map_indexes), default)
    if mapped or map_indexes is not None:
        return values
    return values[0] if values else default


def _as_list(map_indexes: int | list[int] | None) -> list[int] | None:
    if map_indexes is None:
        return None
    return [map_indexes] if isinstance(map_indexes, int) else list(map_indexes)


def _values(ti: TaskInstanceInfo, task_id: str, key: str, map_indexes: list[int] | None, default: Any) -> list[Any]:
    if ti.known_tasks is not None and task_id not in ti.known_tasks:
        raise MinimapError(f"ti.xcom_pull(task_ids={task_id!r}): DAG {ti.dag_id} has no such task")
    assert ti.xcom_reader is not None
    rows = ti.xcom_reader(task_id, map_indexes)
    if key == RETURN_KEY:
        return [v for _, v in rows]
    return [v.get(key, default) if isinstance(v, dict) else default for _, v in rows]
