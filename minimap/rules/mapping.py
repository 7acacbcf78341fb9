"""What an expansion does to a mapped task's existing instances (pure): keep, add, queue, remove.

A mapped task starts as one placeholder (map_index -1). Its first expansion to N elements replaces the
placeholder with 0..N-1 (N = 0: the task is skipped). A task that was cleared after it had been expanded is
expanded again from its upstream's new results: indexes still waiting get their new arguments and are queued,
missing ones are added, waiting ones at or past the new length are `removed`, and whatever finished (or runs)
is kept as it is -- a success is never undone by a re-expansion.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from minimap.states import TIState

PLACEHOLDER = -1


@dataclass(frozen=True)
class Existing:
    """One instance of the task as it stands before the expansion."""

    map_index: int
    state: TIState
    args: str | None  # JSON arguments, as stored


@dataclass(frozen=True)
class ExpansionPlan:
    """What to do, index by index; the store applies it in one scheduling pass."""

    skip: bool = False  # the placeholder maps over nothing: the task's waiting instances are skipped
    drop_placeholder: bool = False  # the placeholder gives way to 0..N-1
    add: tuple[int, ...] = ()  # indexes that do not exist yet: inserted, queued, with the new arguments
    queue: tuple[int, ...] = ()  # waiting indexes below N: queued
    new_args: tuple[int, ...] = ()  # of `queue`, the ones whose arguments changed
    remove: tuple[int, ...] = ()  # waiting indexes at or past N: `removed`
    keep: tuple[int, ...] = ()  # not waiting (finished, running, queued): left as they are


def plan_expansion(old: Iterable[Existing], new: Sequence[str]) -> ExpansionPlan:
    """What expanding to `new` (one JSON argument string per map index) does to the instances `old`."""
    by_index = {e.map_index: e for e in old}
    n = len(new)
    placeholder = by_index.pop(PLACEHOLDER, None)
    if placeholder is not None and n == 0:
        return ExpansionPlan(skip=True)
    waiting = sorted(i for i, e in by_index.items() if e.state is TIState.SCHEDULED)
    queue = tuple(i for i in waiting if i < n)
    return ExpansionPlan(
        drop_placeholder=placeholder is not None,
        add=tuple(i for i in range(n) if i not in by_index),
        queue=queue,
        new_args=tuple(i for i in queue if by_index[i].args != new[i]),
        remove=tuple(i for i in waiting if i >= n),
        keep=tuple(sorted(i for i, e in by_index.items() if e.state is not TIState.SCHEDULED)),
    )
