"""Mapped task groups as users read them: a lane matrix (map index x task, one state each)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from minimap.exceptions import NotFoundError
from minimap.rules.lanes import lane_state
from minimap.service.reads import task_summary
from minimap.service.records import TaskSummary
from minimap.states import TIState
from minimap.store.storage import Store


@dataclass(frozen=True)
class Lane:
    """One lane: its index, its label (the group's map_index_template), each step's state, and its own."""

    map_index: int
    label: str | None
    states: dict[str, TIState]
    state: str


@dataclass(frozen=True)
class LaneMatrix:
    """Every lane of one mapped task group in one run."""

    run_id: str
    group_id: str
    tasks: tuple[str, ...]
    lanes: list[Lane] = field(default_factory=list)
    max_active_lanes: int | None = None
    placeholder: TIState | None = None  # without lanes: scheduled (not expanded yet), skipped (mapped over nothing)...
    tolerated_failures: int | str | None = None  # failed lanes the group may have and succeed

    def describe(self) -> str:
        """The lanes' states in a few words."""
        if not self.lanes:
            return (
                "not expanded yet"
                if self.placeholder in (None, TIState.SCHEDULED)
                else f"no lanes ({self.placeholder})"
            )
        return ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))

    @property
    def counts(self) -> dict[str, int]:
        """Lanes per lane state."""
        return dict(Counter(lane.state for lane in self.lanes))


def mapped_groups(store: Store, run_id: str) -> list[str]:
    """The run's mapped task groups, in definition order."""
    return [gid for gid, g in store.spec(run_id).groups.items() if g.mapped]


def lane_matrix(store: Store, run_id: str, group_id: str, after: int = -1, limit: int | None = None) -> LaneMatrix:
    """The lanes of `group_id` in `run_id` (none yet while the group is not expanded); with `limit`, only
    lanes `after + 1` to `after + limit` are read (a page: the web page never reads every lane)."""
    group = store.spec(run_id).groups.get(group_id)
    if group is None or not group.mapped:
        known = ", ".join(mapped_groups(store, run_id)) or "none"
        raise NotFoundError(f"run {run_id} has no mapped task group {group_id!r} (its mapped task groups: {known})")
    states: dict[int, dict[str, TIState]] = {}
    labels: dict[int, str] = {}
    placeholder = None
    wanted = None if limit is None else [-1, *range(after + 1, after + 1 + limit)]
    for tid in group.tasks:
        for row in store.instances(run_id, tid, map_indexes=wanted):
            if row.map_index < 0:
                placeholder = row.state
                continue
            states.setdefault(row.map_index, {})[tid] = row.state
            if row.label and row.map_index not in labels:
                labels[row.map_index] = row.label
    lanes = [Lane(i, labels.get(i), s, lane_state(s.values())) for i, s in sorted(states.items())]
    return LaneMatrix(
        run_id, group_id, group.tasks, lanes, group.max_active_lanes, placeholder, group.tolerated_failures
    )


@dataclass(frozen=True)
class LaneCounts:
    """A mapped task group's size and each step's per-state counts (one grouped query per step)."""

    total: int  # lanes
    steps: list[TaskSummary]


def lane_counts(store: Store, run_id: str, group_id: str) -> LaneCounts:
    """How many lanes the group has, and how each of its steps stands, without reading its instances."""
    group = store.spec(run_id).groups.get(group_id)
    if group is None or not group.mapped:
        raise NotFoundError(f"run {run_id} has no mapped task group {group_id!r}")
    steps = [task_summary(store, run_id, t) for t in group.tasks]
    waiting = store.instances(run_id, group.tasks[0], map_indexes=[-1]) if group.tasks else []
    total = 0 if not steps or waiting else steps[0].total
    return LaneCounts(total, steps)


def lane_matrix_json(m: LaneMatrix) -> dict[str, Any]:
    return {
        "run_id": m.run_id,
        "group_id": m.group_id,
        "tasks": list(m.tasks),
        "max_active_lanes": m.max_active_lanes,
        "tolerated_failures": m.tolerated_failures,
        "counts": m.counts,
        "lanes": [
            {"map_index": lane.map_index, "label": lane.label, "state": lane.state,
             "states": {t: s.value for t, s in lane.states.items()}}
            for lane in m.lanes
        ],
    }  # fmt: skip
