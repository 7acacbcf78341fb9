"""Why an instance waits (minimap.rules.waiting), as a pure function of the facts around it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from minimap.authoring.loader import load_dag
from minimap.rules.waiting import WaitFacts, waiting_reason
from minimap.snapshot import DagSpec
from minimap.states import TIState
from tests.conftest import DAGS

NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
SPEC = DagSpec.from_json(load_dag(str(DAGS / "reads.py")).snapshot())  # max_active_tasks=8; work capped at 2


def facts(task_id: str = "work", state: TIState = TIState.QUEUED, **kw: object) -> WaitFacts:
    return replace(WaitFacts(spec=SPEC, task_id=task_id, map_index=0, state=state, now=NOW, live_workers=1), **kw)


@pytest.mark.parametrize("state", [TIState.SUCCESS, TIState.FAILED, TIState.SKIPPED, TIState.UPSTREAM_FAILED,
                                   TIState.REMOVED])  # fmt: skip
def test_a_finished_instance_does_not_wait(state: TIState) -> None:
    assert waiting_reason(facts(state=state, running_in_run=99)) is None


def test_a_queued_run_waits_for_the_runs_before_it() -> None:
    reason = waiting_reason(facts(run_state="queued", runs_ahead=2))
    assert reason == "the run is queued behind 2 earlier runs of reads (max_active_runs=16)"


def test_a_scheduled_instance_names_the_upstream_tasks_still_open() -> None:
    upstream = {"work": {"success": 7, "running": 2, "queued": 1}}
    reason = waiting_reason(facts("total", TIState.SCHEDULED, map_index=-1, upstream=upstream))
    assert reason == "waiting for upstream work (7 of 10 done; 1 queued, 2 running)"


def test_once_upstream_is_done_it_waits_for_a_scheduler() -> None:
    done = {"items": {"success": 1}}
    assert waiting_reason(facts("work", TIState.SCHEDULED, map_index=-1, upstream=done)) == (
        "upstream finished: waiting for a scheduler to expand it"
    )
    assert waiting_reason(facts("total", TIState.SCHEDULED, upstream={"work": {"failed": 1}})) == (
        "upstream finished: waiting for a scheduler to decide"
    )


def test_caps_in_order_of_reach() -> None:
    assert "max_active_tasks=8, 8 running in this run" in str(waiting_reason(facts(running_in_run=8)))
    per_run = waiting_reason(facts(running_in_run=2, running_task_in_run=2))
    assert per_run == "at the task's cap: max_active_tis_per_dagrun=2, 2 running in this run"
    everywhere = waiting_reason(facts(running_everywhere=32, parallelism=32))
    assert everywhere == "at the cap on all instances: parallelism=32, 32 running"


def test_a_ready_instance_without_a_cap_waits_for_a_worker() -> None:
    assert waiting_reason(facts(live_workers=0)) == (
        "queued: no worker is running (start one with `minimap worker`, or `minimap resume`)"
    )
    assert waiting_reason(facts(live_workers=3)) == "queued: waiting for a free slot on one of 3 live workers"


def test_a_retry_waits_for_its_delay_then_for_a_worker() -> None:
    later = NOW + timedelta(seconds=42)
    assert str(waiting_reason(facts(state=TIState.UP_FOR_RETRY, next_retry_at=later))).startswith(
        "up for retry: the next try is due in 42 s"
    )
    due = facts(state=TIState.UP_FOR_RETRY, next_retry_at=NOW - timedelta(seconds=1), live_workers=0)
    assert str(waiting_reason(due)).startswith("due for retry: no worker is running")


def test_a_running_instance_waits_only_when_its_worker_went_silent() -> None:
    alive = facts(state=TIState.RUNNING, worker_id="h:1:a", worker_heartbeat_at=NOW - timedelta(seconds=3))
    assert waiting_reason(alive) is None
    silent = replace(alive, worker_heartbeat_at=NOW - timedelta(seconds=95))
    assert waiting_reason(silent) == (
        "running under worker h:1:a, silent for 95 s (over the 30 s lease): a scheduler will reclaim it"
    )
    gone = replace(alive, worker_heartbeat_at=None)
    assert "which is not registered" in str(waiting_reason(gone))


def test_a_pool_that_is_full_or_missing() -> None:
    assert waiting_reason(facts(pool_size=4, pool_in_use=4)) == (
        "at the pool's cap: pool 'default_pool' has 4 slots, 4 taken by running instances, and this one takes 1"
    )
    assert waiting_reason(facts(pool_size=None)) == (
        "pool 'default_pool' does not exist: create it with `minimap pools set default_pool SLOTS`"
    )
    assert (
        waiting_reason(facts(pool_size=4, pool_in_use=3)) == "queued: waiting for a free slot on one of 1 live worker"
    )
