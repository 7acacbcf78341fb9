"""The states of task instances and runs (Airflow's names), and the moves allowed between them."""

from __future__ import annotations

from enum import Enum


class TIState(str, Enum):
    """The state of one task instance (one map index of one task in one run)."""

    SCHEDULED = "scheduled"  # created; waits for its upstream tasks and its trigger rule
    QUEUED = "queued"  # ready: a worker claims it as soon as the caps allow
    RUNNING = "running"  # claimed by a worker; an attempt is under way
    SUCCESS = "success"  # the last attempt returned
    FAILED = "failed"  # the last attempt raised and no tries are left
    UP_FOR_RETRY = "up_for_retry"  # the last attempt raised; claimable again after its retry delay
    UPSTREAM_FAILED = "upstream_failed"  # will not run: an upstream failed (or its map length is unknown)
    SKIPPED = "skipped"  # will not run: skipped by its trigger rule, by itself, or mapped over nothing
    REMOVED = "removed"  # its map index no longer exists after a re-expansion

    def __str__(self) -> str:
        return self.value


FINISHED = frozenset({TIState.SUCCESS, TIState.FAILED, TIState.UPSTREAM_FAILED, TIState.SKIPPED, TIState.REMOVED})
UNFINISHED = frozenset(set(TIState) - FINISHED)

# Which state may follow which. A clear moves any instance that is not running back to SCHEDULED.
TRANSITIONS: dict[TIState, frozenset[TIState]] = {
    TIState.SCHEDULED: frozenset({TIState.QUEUED, TIState.SKIPPED, TIState.UPSTREAM_FAILED, TIState.REMOVED}),
    TIState.QUEUED: frozenset({TIState.RUNNING, TIState.SCHEDULED, TIState.REMOVED}),
    TIState.RUNNING: frozenset(
        {TIState.SUCCESS, TIState.FAILED, TIState.UP_FOR_RETRY, TIState.SKIPPED, TIState.QUEUED}
    ),
    TIState.UP_FOR_RETRY: frozenset({TIState.RUNNING, TIState.SCHEDULED, TIState.FAILED}),
    TIState.SUCCESS: frozenset({TIState.SCHEDULED}),
    TIState.FAILED: frozenset({TIState.SCHEDULED}),
    TIState.UPSTREAM_FAILED: frozenset({TIState.SCHEDULED}),
    TIState.SKIPPED: frozenset({TIState.SCHEDULED}),
    TIState.REMOVED: frozenset({TIState.SCHEDULED}),
}


class RunState(str, Enum):
    """The state of one DAG run."""

    QUEUED = "queued"  # created; waits for a slot under the DAG's max_active_runs
    RUNNING = "running"  # some instance is not finished
    SUCCESS = "success"  # every instance finished and no leaf failed
    FAILED = "failed"  # every instance finished and a leaf ended failed or upstream_failed

    def __str__(self) -> str:
        return self.value


def can_move(old: TIState, new: TIState) -> bool:
    """Whether an instance may go from `old` to `new`."""
    return new in TRANSITIONS[old]
