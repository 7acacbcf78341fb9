"""Failure tolerance of a mapped task (pure): how many failed instances still count as the task succeeding.

`tolerated_failures=3` allows three failed instances; `tolerated_failures="5%"` allows failures up to 5% of the
task's instances (failed * 100 <= 5 * instances, computed exactly: 2 of 40 pass, 3 of 40 do not).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from minimap.exceptions import DefinitionError


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


def failures_tolerated(value: int | str | None, failed: int, total: int) -> bool | None:
    """None when the task has no tolerance; else whether `failed` of `total` is within it."""
    if value is None:
        return None
    return tolerance(value).allows(failed, total)
