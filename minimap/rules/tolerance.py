"""Failure tolerance of a mapped task (pure): how many failed instances still count as the task succeeding.

`tolerated_failures=3` allows three failed instances; `tolerated_failures="5%"` allows failures up to 5% of the
task's instances (failed * 100 <= 5 * instances, computed exactly: 2 of 40 pass, 3 of 40 do not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from minimap.exceptions import DefinitionError
from minimap.states import UNFINISHED, TIState

if TYPE_CHECKING:
    from minimap.snapshot import TaskSpec


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


def as_upstream(task: TaskSpec, counts: Mapping[TIState, int]) -> dict[TIState, int]:
    """How `task`'s instances count for the tasks that wait on it: while within its tolerance, its failures are
    not done yet (pending) or count as successes (every instance finished); past it, as they are."""
    seen = dict(counts)
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
