"""How an attempt ends (pure): what the instance becomes, what its try records, and whether a try was spent.

Five endings. The task's own: success (or skipped), a failure retried after its delay while tries are left, a
failure for good. Not the task's: its worker died (a lost worker), or its worker was stopped and handed it back.
Neither of the last two spends a retry or waits out the retry delay: the instance is queued again at once. A task
that kills its worker every time would loop for ever, so `max_lost` lost attempts in a row fail it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from minimap.states import TIState

#: The error types a try records when the attempt did not end by itself.
WORKER_LOST = "WorkerLost"
HANDED_BACK = "Interrupted"


@dataclass(frozen=True)
class Ending:
    """What recording an ended attempt does."""

    state: TIState  # the instance's new state
    try_state: TIState  # the state its try records (a retry's try failed)
    spent: bool = True  # whether the attempt counts against the task's retries
    next_retry_at: datetime | None = None
    error: str | None = None  # the instance's error line


def finished(kind: str, try_number: int, max_tries: int, now: datetime, delay: float) -> Ending:
    """The task process reported `kind` (success, skipped, failed, fail_now) for try `try_number`."""
    if kind == "success":
        return Ending(TIState.SUCCESS, TIState.SUCCESS)
    if kind == "skipped":
        return Ending(TIState.SKIPPED, TIState.SKIPPED)
    if kind == "failed" and try_number < max_tries:
        return Ending(TIState.UP_FOR_RETRY, TIState.FAILED, next_retry_at=now + timedelta(seconds=delay))
    return Ending(TIState.FAILED, TIState.FAILED)


def lost_in_a_row(earlier: Iterable[str | None]) -> int:
    """How many of the earlier tries (newest first, by error type) lost their worker in a row.

    A hand-back neither counts nor breaks the streak (the operator stopped the worker; the task did nothing);
    any other ending breaks it.
    """
    n = 0
    for error_type in earlier:
        if error_type == HANDED_BACK:
            continue
        if error_type != WORKER_LOST:
            break
        n += 1
    return n


def lost(reason: str, earlier_lost: int, max_lost: int) -> Ending:
    """The attempt's worker died (`reason`, e.g. `worker vm:123 is gone`): queue it again at once without
    spending a retry, unless this makes `max_lost` lost attempts in a row."""
    n = earlier_lost + 1
    if n >= max_lost:
        return Ending(
            TIState.FAILED,
            TIState.FAILED,
            error=f"{WORKER_LOST}: {reason}; it lost its worker {n} times in a row, so it is failed "
            f"(MINIMAP_MAX_LOST_ATTEMPTS={max_lost})",
        )
    return Ending(
        TIState.QUEUED,
        TIState.FAILED,
        spent=False,
        error=f"{WORKER_LOST}: {reason}; queued again without using a retry ({n} of {max_lost} lost in a row)",
    )


def handed_back(reason: str) -> Ending:
    """The attempt's worker was stopped before it ended and gave it back: queue it again, no retry spent."""
    return Ending(TIState.QUEUED, TIState.FAILED, spent=False, error=reason)
