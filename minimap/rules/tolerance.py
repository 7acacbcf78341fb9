"""Failure tolerance of a mapped task or a mapped task group (pure): how many failed instances (or lanes)
still count as the task (or group) succeeding.

`tolerated_failures=3` allows three failed instances; `tolerated_failures="5%"` allows failures up to 5% of the
task's instances (failed * 100 <= 5 * instances, computed exactly: 2 of 40 pass, 3 of 40 do not). On a mapped
group the same counts lanes: a lane failed when one of its steps ended failed or upstream_failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from minimap.exceptions import DefinitionError
from minimap.states import UNFINISHED, TIState

if TYPE_CHECKING:
    from minimap.snapshot import DagSpec, GroupSpec, TaskSpec

Counts = Mapping[str, Mapping[TIState, int]]  # task_id -> state -> number of instances
_BAD = (TIState.FAILED, TIState.UPSTREAM_FAILED)


@dataclass(frozen=True)
class Tolerance:
    """A number of failed instances, or a percentage of the task's instances."""

    count: int | None = None
    percent: Fraction | None = None

    def allows(self, failed: int, total: int) -> bool:
        """Whether `failed` of `total` instances failing is still within the tolerance."""
        if self.count is not None:
            return failed <= self.count
        assert self.percent is not None
        return failed * 100 <= self.percent * total

    def describe(self) -> str:
        if self.count is not None:
            return f"tolerated_failures={self.count}"
        return f"tolerated_failures={float(self.percent or 0):g}%"


def tolerance(value: Any) -> Tolerance:
    """`value` (a whole number >= 0, or a string "N%" with 0 <= N <= 100) as a Tolerance; else DefinitionError."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Tolerance(count=value)
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            percent = Fraction(value.strip()[:-1].strip())
        except (ValueError, ZeroDivisionError):
            percent = Fraction(-1)
        if 0 <= percent <= 100:
            return Tolerance(percent=percent)
    raise DefinitionError(f"tolerated_failures must be a whole number >= 0 or a percentage like '5%', got {value!r}")


class Standing(Enum):
    """Where a mapped task with a tolerance stands."""

    NONE = "none"  # no tolerance: its failures count as they are
    PENDING = "pending"  # within the tolerance, instances unfinished: its failures are not judged yet
    TOLERATED = "tolerated"  # every instance finished, failures within the tolerance: it counts as succeeded
    EXCEEDED = "exceeded"  # more failures than tolerated: it counts as failed at once


def standing(task: TaskSpec, counts: Mapping[TIState, int]) -> Standing:
    """How `task`'s instances (counted by state) stand against its tolerated_failures."""
    if task.tolerated_failures is None:
        return Standing.NONE
    total = sum(n for s, n in counts.items() if s is not TIState.REMOVED)
    failed = counts.get(TIState.FAILED, 0)
    if not tolerance(task.tolerated_failures).allows(failed, total):
        return Standing.EXCEEDED
    if any(n for s, n in counts.items() if s in UNFINISHED):
        return Standing.PENDING
    return Standing.TOLERATED


def as_upstream(task: TaskSpec, counts: Mapping[TIState, int], group: Standing = Standing.NONE) -> dict[TIState, int]:
    """How `task`'s instances count for the tasks that wait on it: while within its tolerance, its failures are
    not done yet (pending) or count as successes (every instance finished); past it, as they are.

    `group`: how the task's mapped group stands against its tolerance (see `group_standing`): a step's failed
    and upstream_failed instances (its failed lanes) count the same way."""
    seen = dict(counts)
    if group is Standing.PENDING or group is Standing.TOLERATED:
        bad = sum(seen.pop(s, 0) for s in _BAD)
        to = TIState.RUNNING if group is Standing.PENDING else TIState.SUCCESS
        if bad:
            seen[to] = seen.get(to, 0) + bad
        return seen
    failed = seen.get(TIState.FAILED, 0)
    s = standing(task, counts)
    if failed and s is Standing.PENDING:
        seen[TIState.FAILED], seen[TIState.RUNNING] = 0, seen.get(TIState.RUNNING, 0) + failed
    elif failed and s is Standing.TOLERATED:
        seen[TIState.FAILED], seen[TIState.SUCCESS] = 0, seen.get(TIState.SUCCESS, 0) + failed
    return seen


def verdict(task: TaskSpec, counts: Mapping[TIState, int]) -> str | None:
    """One line on the task's tolerance once it decided something (for the run's summary and the error)."""
    s = standing(task, counts)
    failed = counts.get(TIState.FAILED, 0)
    if s is Standing.EXCEEDED:
        return f"{failed} failed, past {tolerance(task.tolerated_failures).describe()}: the task failed"
    if s is Standing.TOLERATED and failed:
        return f"{failed} failed, within {tolerance(task.tolerated_failures).describe()}: the task succeeded"
    return None


# --- mapped task groups: failed lanes ---------------------------------------------------------------


@dataclass(frozen=True)
class LaneTally:
    """How a mapped group's lanes stand, read by the store: lanes made, lanes with a step failed or
    upstream_failed, and lanes not started (every step still scheduled or queued)."""

    lanes: int = 0
    failed: int = 0
    unstarted: int = 0


Tallies = Mapping[str, LaneTally]  # group_id -> its lanes (a group with no failed step may have none)
NO_TALLIES: Tallies = MappingProxyType({})


def tallies_needed(spec: DagSpec, counts: Counts) -> list[str]:
    """Mapped groups with tolerated_failures one of whose steps has a failed or upstream_failed instance: the
    groups whose failed lanes the store counts (without a failure, nothing is left to tolerate)."""
    return [
        gid
        for gid, g in spec.groups.items()
        if g.mapped
        and g.tolerated_failures is not None
        and any(counts.get(t, {}).get(s) for t in g.tasks for s in _BAD)
    ]


def group_standing(spec: DagSpec, group: GroupSpec, counts: Counts, tally: LaneTally | None) -> Standing:
    """Where a mapped group stands against its tolerated_failures, counting failed lanes.

    NONE (failures count as they are) when it has no tolerance, no tally (no failed step), no lanes (its input
    failed or was empty), or, within the tolerance, a task outside the group that one of its steps waits on
    failed: a lane that could not run for that is not a failure of its own, and is never tolerated. Past the
    tolerance it is EXCEEDED whatever the cause (as the claim sees it: store/tolerance.py)."""
    if group.tolerated_failures is None or tally is None or tally.lanes == 0:
        return Standing.NONE
    if not tolerance(group.tolerated_failures).allows(tally.failed, tally.lanes):
        return Standing.EXCEEDED
    inside = set(group.tasks)
    for tid in group.tasks:
        for up in spec.tasks[tid].upstream:
            if up not in inside and any(as_upstream(spec.tasks[up], counts.get(up, {})).get(s) for s in _BAD):
                return Standing.NONE
    if any(n for t in group.tasks for s, n in counts.get(t, {}).items() if s in UNFINISHED):
        return Standing.PENDING
    return Standing.TOLERATED


def step_standing(spec: DagSpec, task_id: str, counts: Counts, tallies: Tallies) -> Standing:
    """How the mapped group `task_id` is a step of stands against its tolerance (NONE: not a step of one)."""
    gid = spec.tasks[task_id].group
    if gid is None:
        return Standing.NONE
    return group_standing(spec, spec.groups[gid], counts, tallies.get(gid))


def seen_upstream(spec: DagSpec, task_id: str, counts: Counts, tallies: Tallies) -> dict[TIState, int]:
    """`task_id`'s instances as the tasks waiting on it count them: its own tolerance, or its group's, applied."""
    return as_upstream(spec.tasks[task_id], counts.get(task_id, {}), step_standing(spec, task_id, counts, tallies))


def group_verdict(spec: DagSpec, group: GroupSpec, counts: Counts, tally: LaneTally | None) -> str | None:
    """One line on the group's tolerance once it decided something (for the run's summary and the skip reason)."""
    s = group_standing(spec, group, counts, tally)
    if tally is None or not tally.failed or s in (Standing.NONE, Standing.PENDING):
        return None
    lanes = f"{tally.failed} lane{'s' * (tally.failed != 1)} failed"
    if s is Standing.EXCEEDED:
        return f"{lanes}, past {tolerance(group.tolerated_failures).describe()}: the group failed"
    return f"{lanes}, within {tolerance(group.tolerated_failures).describe()}: the group succeeded"
