"""The frozen structure of a DAG as stored with each run: plain data, no user code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskSpec:
    """One task as the scheduler and workers see it."""

    task_id: str
    upstream: tuple[str, ...]
    downstream: tuple[str, ...]
    trigger_rule: str
    retries: int
    retry_delay: float
    retry_exponential_backoff: bool
    max_retry_delay: float | None
    execution_timeout: float | None
    max_active_tis_per_dag: int | None
    max_active_tis_per_dagrun: int | None
    map_index_template: str | None
    mapped_over: bool
    kwargs: dict[str, Any]
    expand: dict[str, Any] | None
    expand_kwargs: Any

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
class DagSpec:
    """A DAG's structure and run-level limits."""

    dag_id: str
    max_active_runs: int
    max_active_tasks: int
    max_map_length: int
    params: dict[str, Any]
    tasks: dict[str, TaskSpec]

    @classmethod
    def from_json(cls, data: str | dict[str, Any]) -> DagSpec:
        raw = json.loads(data) if isinstance(data, str) else data
        tasks = {
            tid: TaskSpec(
                task_id=tid,
                upstream=tuple(t["upstream"]),
                downstream=tuple(t["downstream"]),
                **{k: v for k, v in t.items() if k not in ("upstream", "downstream")},
            )
            for tid, t in raw["tasks"].items()
        }
        return cls(
            dag_id=raw["dag_id"],
            max_active_runs=raw["max_active_runs"],
            max_active_tasks=raw["max_active_tasks"],
            max_map_length=raw["max_map_length"],
            params=raw.get("params") or {},
            tasks=tasks,
        )

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


def _refs(expr: Any) -> Iterator[str]:
    if not isinstance(expr, dict):
        return
    if "ref" in expr:
        yield expr["ref"]
    elif "map" in expr:
        yield from _refs(expr["src"])
    elif "zip" in expr or "concat" in expr or "list" in expr:
        for e in expr.get("zip") or expr.get("concat") or expr.get("list") or []:
            yield from _refs(e)
    elif "dict" in expr:
        for e in expr["dict"].values():
            yield from _refs(e)
