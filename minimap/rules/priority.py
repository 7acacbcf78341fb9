"""Which ready instances are claimed first (pure): Airflow's priority weights and weight rules.

A task's effective weight is its own `priority_weight` plus, under the default rule `downstream`, the weights of
every task that waits on it (directly or not), or under `upstream`, of every task it waits on; `absolute` is its
own weight alone. Higher weights are claimed first; equal weights in run, task and map index order.
"""

from __future__ import annotations

from typing import Any

from minimap.snapshot import DagSpec


def _upstream_closure(spec: DagSpec, task_id: str) -> set[str]:
    seen: set[str] = set()
    todo = list(spec.tasks[task_id].upstream)
    while todo:
        tid = todo.pop()
        if tid not in seen:
            seen.add(tid)
            todo.extend(spec.tasks[tid].upstream)
    return seen


def effective_weights(spec: DagSpec) -> dict[str, int]:
    """task_id -> the weight its instances are claimed by."""
    weights: dict[str, int] = {}
    for tid, task in spec.tasks.items():
        if task.weight_rule == "downstream":
            others = spec.downstream_closure({tid})
        elif task.weight_rule == "upstream":
            others = _upstream_closure(spec, tid)
        else:
            others = set()
        weights[tid] = task.priority_weight + sum(spec.tasks[o].priority_weight for o in others)
    return weights


def claim_fields(spec: DagSpec) -> dict[str, dict[str, Any]]:
    """task_id -> what each of its instance rows carries for the claim: pool, pool_slots, priority_weight."""
    weights = effective_weights(spec)
    return {
        tid: {"pool": t.pool, "pool_slots": t.pool_slots, "priority_weight": weights[tid]}
        for tid, t in spec.tasks.items()
    }
