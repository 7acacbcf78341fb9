"""The frozen structure of a DAG as stored with each run: plain data, no user code.

Defined once: `DagSpec`/`TaskSpec` are what the loader builds from a DAG file, what `to_dict` stores with a
run, and what `from_json` reads back (refusing a snapshot written in another format version).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from minimap.exceptions import SnapshotError

#: The format of the stored snapshot; a run stored with another version is refused, never misread.
#: 2: expressions may index a result by key (`{"ref": t, "key": k}`); schedule fields stored.
#: 3: task groups (`groups`, `TaskSpec.group`); expressions may name a lane's argument (`{"lane": name}`).
SNAPSHOT_VERSION = 3


@dataclass(frozen=True)
class TaskSpec:
    """One task as the scheduler and workers see it."""

    task_id: str
    upstream: tuple[str, ...] = ()
    downstream: tuple[str, ...] = ()
    trigger_rule: str = "all_success"
    retries: int = 0
    retry_delay: float = 300.0  # Airflow's default: five minutes
    retry_exponential_backoff: bool = False
    max_retry_delay: float | None = None
    execution_timeout: float | None = None
    max_active_tis_per_dag: int | None = None
    max_active_tis_per_dagrun: int | None = None
    map_index_template: str | None = None
    multiple_outputs: bool = False  # the result is a dict whose keys downstream tasks use one by one
    pool: str = "default_pool"  # the pool whose slots its running instances take (minimap pools)
    pool_slots: int = 1
    priority_weight: int = 1  # with weight_rule: which ready instances are claimed first
    weight_rule: str = "downstream"  # Airflow's: downstream | upstream | absolute
    tolerated_failures: int | str | None = None  # mapped: failed instances allowed, a count or "N%"
    mapped_over: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)
    expand: dict[str, Any] | None = None
    expand_kwargs: Any = None
    group: str | None = None  # the mapped task group this task is a lane step of (plain groups: None)

    @property
    def mapped(self) -> bool:
        return self.expand is not None or self.expand_kwargs is not None

    def refs(self) -> set[str]:
        """Upstream tasks whose results this task's arguments are built from."""
        exprs = list(self.kwargs.values())
        if self.expand is not None:
            exprs.extend(self.expand.values())
        if self.expand_kwargs is not None:
            exprs.append(self.expand_kwargs)
        return {ref for e in exprs for ref in _refs(e)}

    def retry_delay_after(self, try_number: int) -> float:
        """Seconds to wait before try `try_number + 1` (Airflow's doubling when backoff is on)."""
        delay = self.retry_delay
        if self.retry_exponential_backoff:
            delay = delay * (2 ** max(try_number - 1, 0))
        if self.max_retry_delay is not None:
            delay = min(delay, self.max_retry_delay)
        return delay


@dataclass(frozen=True)
class GroupSpec:
    """A task group: plain (structure and ids only) or mapped (its tasks run in lanes, one per element)."""

    group_id: str
    tasks: tuple[str, ...] = ()  # every task inside, nested groups' too, in definition order
    parent: str | None = None
    mapped: bool = False
    expand: dict[str, Any] | None = None  # name -> expression, as a task's (cross product)
    expand_kwargs: Any = None  # an expression giving a list of dicts
    max_active_lanes: int | None = None  # lanes in flight at once (started, not finished)
    tolerated_failures: int | str | None = None  # mapped: failed lanes allowed, a count or "N%" (optional: stored
    # only when set, so a snapshot without it reads as before and SNAPSHOT_VERSION stays)
    map_index_template: str | None = None

    def refs(self) -> set[str]:
        """Tasks whose results the lanes are made from."""
        exprs = list((self.expand or {}).values())
        if self.expand_kwargs is not None:
            exprs.append(self.expand_kwargs)
        return {ref for e in exprs for ref in _refs(e)}


@dataclass(frozen=True)
class DagSpec:
    """A DAG's structure, run-level limits and time schedule (acted on by `minimap scheduler`)."""

    dag_id: str
    max_active_runs: int = 16
    max_active_tasks: int = 16
    max_map_length: int = 10_000
    params: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    fileloc: str = ""
    schedule: str | None = None  # a cron expression, a preset ("@daily"), "@once", or "every N seconds"
    start_date: str | None = None  # ISO 8601 (naive: UTC)
    end_date: str | None = None
    timezone: str = "UTC"  # where the schedule is evaluated: start_date's zone (IANA name or +HH:MM)
    catchup: bool = False
    paused_upon_creation: bool = False  # is_paused_upon_creation: `minimap scheduler` records it paused
    dagrun_timeout: float | None = None  # seconds
    tags: tuple[str, ...] = ()
    groups: dict[str, GroupSpec] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as plain JSON data, stored with each run (read back by `from_json`)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("tasks", "groups")}
        data["tags"] = list(self.tags)
        data["groups"] = {
            gid: {**{f.name: getattr(g, f.name) for f in dataclasses.fields(g) if f.name not in _omitted(g)},
                  "tasks": list(g.tasks)}
            for gid, g in self.groups.items()
        }  # fmt: skip
        tasks = {}
        for tid, t in self.tasks.items():
            tasks[tid] = {f.name: getattr(t, f.name) for f in dataclasses.fields(t) if f.name != "task_id"}
            tasks[tid]["upstream"], tasks[tid]["downstream"] = list(t.upstream), list(t.downstream)
        return {"version": SNAPSHOT_VERSION, **data, "tasks": tasks}

    @classmethod
    def from_json(cls, data: str | dict[str, Any]) -> DagSpec:
        """A stored snapshot read back; one written in another format is refused with a SnapshotError."""
        raw = json.loads(data) if isinstance(data, str) else data
        version = raw.get("version")
        if version != SNAPSHOT_VERSION:
            raise SnapshotError(
                f"the run of DAG {raw.get('dag_id')!r} was stored by another minimap (snapshot format {version}, "
                f"this minimap reads format {SNAPSHOT_VERSION}): finish it with that minimap, or trigger a new run"
            )
        try:
            tasks = {
                tid: TaskSpec(
                    task_id=tid,
                    **{**t, "upstream": tuple(t["upstream"]), "downstream": tuple(t["downstream"])},
                )
                for tid, t in raw["tasks"].items()
            }
            groups = {
                gid: GroupSpec(group_id=gid, **{**g, "tasks": tuple(g["tasks"])})
                for gid, g in (raw.get("groups") or {}).items()
            }
            fields = {k: v for k, v in raw.items() if k not in ("version", "tasks", "groups")}
            return cls(**{**fields, "tags": tuple(raw.get("tags") or ()), "tasks": tasks, "groups": groups})
        except (TypeError, KeyError) as e:
            raise SnapshotError(f"the stored snapshot of DAG {raw.get('dag_id')!r} is not readable: {e}") from None

    def lane_group(self, task_id: str) -> GroupSpec | None:
        """The mapped group whose lanes `task_id` runs in, if any."""
        gid = self.tasks[task_id].group
        return self.groups[gid] if gid is not None else None

    def in_lane(self, up: str, down: str) -> bool:
        """Whether `down[i]` waits for `up[i]` only: both are steps of the same mapped group's lanes."""
        g = self.tasks[down].group
        return g is not None and self.tasks[up].group == g

    def leaves(self) -> list[str]:
        """Tasks nothing waits on: a run fails when one of them ends failed or upstream_failed."""
        return [tid for tid, t in self.tasks.items() if not t.downstream]

    def downstream_closure(self, task_ids: set[str]) -> set[str]:
        """Every task that waits, directly or not, on any of `task_ids` (not including them)."""
        seen: set[str] = set()
        todo = [d for tid in task_ids for d in self.tasks[tid].downstream]
        while todo:
            tid = todo.pop()
            if tid not in seen:
                seen.add(tid)
                todo.extend(self.tasks[tid].downstream)
        return seen


def _omitted(g: GroupSpec) -> tuple[str, ...]:
    """GroupSpec fields a stored snapshot leaves out: its id (the key), and optional fields left unset (an older
    minimap reading the same format then reads a group that does not use them)."""
    return ("group_id",) if g.tolerated_failures is not None else ("group_id", "tolerated_failures")


def _refs(expr: Any) -> Iterator[str]:
    if not isinstance(expr, dict):
        return
    if "ref" in expr:
        yield expr["ref"]  # with or without a "key"
    elif "map" in expr:
        yield from _refs(expr["src"])
    elif "zip" in expr or "concat" in expr or "list" in expr:
        for e in expr.get("zip") or expr.get("concat") or expr.get("list") or []:
            yield from _refs(e)
    elif "dict" in expr:
        for e in expr["dict"].values():
            yield from _refs(e)
