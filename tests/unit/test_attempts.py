"""How an attempt ends (minimap.rules.attempts), without a database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from minimap.rules import attempts
from minimap.states import TIState

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("kind", "try_number", "max_tries", "state", "spent", "retry_at"),
    [
        ("success", 1, 1, TIState.SUCCESS, True, None),
        ("skipped", 1, 1, TIState.SKIPPED, True, None),
        ("failed", 1, 2, TIState.UP_FOR_RETRY, True, NOW + timedelta(seconds=5)),
        ("failed", 2, 2, TIState.FAILED, True, None),
        ("fail_now", 1, 3, TIState.FAILED, True, None),
    ],
)
def test_the_tasks_own_endings(
    kind: str, try_number: int, max_tries: int, state: TIState, spent: bool, retry_at: datetime | None
) -> None:
    ending = attempts.finished(kind, try_number, max_tries, NOW, 5.0)
    assert (ending.state, ending.spent, ending.next_retry_at) == (state, spent, retry_at)
    assert ending.try_state is (TIState.FAILED if state is TIState.UP_FOR_RETRY else state)


def test_a_lost_worker_queues_the_instance_again_without_spending_a_retry_or_waiting() -> None:
    ending = attempts.lost("worker vm:12 is gone", earlier_lost=0, max_lost=3)
    assert (ending.state, ending.try_state, ending.spent, ending.next_retry_at) == (
        TIState.QUEUED, TIState.FAILED, False, None,
    )  # fmt: skip
    assert ending.error == "WorkerLost: worker vm:12 is gone; queued again without using a retry (1 of 3 lost in a row)"


def test_losing_the_worker_max_lost_times_in_a_row_fails_the_instance_saying_so() -> None:
    assert attempts.lost("worker vm:12 is gone", earlier_lost=1, max_lost=3).state is TIState.QUEUED
    ending = attempts.lost("worker vm:12 is gone", earlier_lost=2, max_lost=3)
    assert (ending.state, ending.spent) == (TIState.FAILED, True)
    assert ending.error is not None and "lost its worker 3 times in a row" in ending.error
    assert "MINIMAP_MAX_LOST_ATTEMPTS=3" in ending.error
    assert attempts.lost("gone", earlier_lost=0, max_lost=1).state is TIState.FAILED


@pytest.mark.parametrize(
    ("earlier", "streak"),
    [
        ([], 0),
        (["WorkerLost"], 1),
        (["WorkerLost", "WorkerLost"], 2),
        (["WorkerLost", "Interrupted", "WorkerLost"], 2),  # a hand-back neither counts nor breaks the streak
        (["WorkerLost", "ValueError", "WorkerLost"], 1),  # any other ending does break it
        ([None, "WorkerLost"], 0),  # a success (no error) too
    ],
)
def test_lost_attempts_are_counted_in_a_row_newest_first(earlier: list[str | None], streak: int) -> None:
    assert attempts.lost_in_a_row(earlier) == streak


def test_a_hand_back_queues_again_without_spending_a_retry() -> None:
    ending = attempts.handed_back("worker vm:12 stopped (SIGTERM) before the attempt finished")
    assert (ending.state, ending.spent, ending.error) == (
        TIState.QUEUED, False, "worker vm:12 stopped (SIGTERM) before the attempt finished",
    )  # fmt: skip
