"""A new run's first instances, from its DAG's frozen structure alone (a trigger, a scheduler, a backfill)."""

from __future__ import annotations

from typing import Any

from minimap.exceptions import DefinitionError
from minimap.rules.expansion import ExpansionError, encode_args, expand
from minimap.rules.priority import claim_fields
from minimap.snapshot import DagSpec
from minimap.states import TIState


def initial_instances(spec: DagSpec) -> list[dict[str, Any]]:
    """A new run's instances: one placeholder (map_index -1) per task, except that a task mapped over
    literals alone is expanded at once (its length is known before anything runs)."""
    rows: list[dict[str, Any]] = []
    fields = claim_fields(spec)  # pool, pool_slots, effective priority_weight: what the claim reads and orders by
    for tid, t in spec.tasks.items():
        base = {"task_id": tid, "state": TIState.SCHEDULED.value, "max_tries": t.retries + 1, "args": None}
        base.update(fields[tid])
        if t.mapped and not t.refs():
            try:
                args = [encode_args(kw) for kw in expand(t, {})]
            except ExpansionError as e:
                raise DefinitionError(f"task {tid}: {e}") from None
            if args:
                rows.extend({**base, "map_index": i, "args": a} for i, a in enumerate(args))  # same keys every row
                continue
        rows.append({**base, "map_index": -1})
    return rows
