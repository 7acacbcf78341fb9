"""Failure tolerance of a mapped task: its edge, what waits on it, and what a clear of a tolerated failure resets."""

from fractions import Fraction

import pytest

from minimap.authoring.dag import DAG
from minimap.authoring.taskflow import task
from minimap.exceptions import DefinitionError
from minimap.rules.clearing import Instance, expected_reruns, plan
from minimap.rules.decisions import Abandon, FinishRun, Prepare, Settle, decide
from minimap.rules.tolerance import Tolerance, tolerance
from minimap.snapshot import DagSpec
from minimap.states import RunState, TIState

S, Q, R, OK, F, UF, SK = (
    TIState.SCHEDULED, TIState.QUEUED, TIState.RUNNING, TIState.SUCCESS, TIState.FAILED, TIState.UPSTREAM_FAILED,
    TIState.SKIPPED,
)  # fmt: skip


def shipping(tolerated: int | str | None, leaf: bool = False) -> DagSpec:
    with DAG("d") as dag:

        @task
        def fetch():
            return []

        @task(tolerated_failures=tolerated)
        def send(item):
            return item

        @task
        def summarize(r):
            return r

        sent = send.expand(item=fetch())
        if not leaf:
            summarize(sent)
    return DagSpec.from_json(dag.snapshot())


@pytest.mark.parametrize(
    ("value", "failed", "total", "allowed"),
    [
        (3, 3, 10, True),
        (3, 4, 10, False),
        (0, 0, 10, True),
        (0, 1, 10, False),
        ("20%", 2, 10, True),
        ("20%", 3, 10, False),
        ("5%", 2, 40, True),
        ("5%", 3, 40, False),
        ("2.5%", 1, 40, True),
        ("2.5%", 2, 40, False),
        ("100%", 10, 10, True),
        ("0%", 1, 10, False),
    ],
)
def test_the_edge_is_included(value: int | str, failed: int, total: int, allowed: bool) -> None:
    assert tolerance(value).allows(failed, total) is allowed


def test_values() -> None:
    assert tolerance(" 12.5 % ") == Tolerance(percent=Fraction(25, 2))
    assert tolerance("12.5%").describe() == "tolerated_failures=12.5%"
    for bad in (-1, True, 1.5, "5", "-1%", "101%", "x%", None):
        with pytest.raises(DefinitionError, match="tolerated_failures must be"):
            tolerance(bad)


def test_failures_within_the_tolerance_are_not_judged_while_instances_run() -> None:
    counts = {"fetch": {OK: 1}, "send": {OK: 5, F: 3, R: 2}, "summarize": {S: 1}}
    assert decide(shipping(3), counts) == []  # no tolerance: summarize would be upstream_failed at once
    assert decide(shipping(None), counts) == [Settle("summarize", UF)]


def test_within_the_tolerance_once_finished_downstream_runs_and_the_run_succeeds() -> None:
    counts = {"fetch": {OK: 1}, "send": {OK: 7, F: 3}, "summarize": {S: 1}}
    assert decide(shipping(3), counts) == [Prepare("summarize")]
    assert decide(shipping("30%"), counts) == [Prepare("summarize")]
    done = {"fetch": {OK: 1}, "send": {OK: 7, F: 3}}
    assert decide(shipping(3, leaf=True), done) == [FinishRun(RunState.SUCCESS)]


def test_one_more_failure_fails_the_task_at_once_and_nothing_else_starts() -> None:
    counts = {"fetch": {OK: 1}, "send": {OK: 2, F: 4, R: 1, Q: 3}, "summarize": {S: 1}}
    actions = decide(shipping(3), counts)
    assert actions == [
        Abandon("send", "not started: send had 4 failed, past tolerated_failures=3: the task failed"),
        Settle("summarize", UF),
    ]
    assert decide(shipping("29%", leaf=True), {"fetch": {OK: 1}, "send": {OK: 7, F: 3}}) == [FinishRun(RunState.FAILED)]


def instances(states: list[TIState], tries: int = 1) -> list[Instance]:
    return [Instance("send", i, s, 0 if s is SK else tries) for i, s in enumerate(states)]


def test_clearing_a_tolerated_failure_reruns_what_ran_without_it() -> None:
    spec = shipping(3)
    found = [Instance("fetch", -1, OK), *instances([OK, F, OK, F]), Instance("summarize", -1, OK)]
    reset = plan(spec, found, [("send", 1)])
    assert [(i.task_id, i.map_index) for i in reset] == [("send", 1), ("summarize", -1)]
    assert expected_reruns(spec, reset) == {("summarize", -1)}  # the CLI does not ask about it


def test_clearing_the_failures_past_the_tolerance_restarts_what_it_left_unstarted() -> None:
    spec = shipping(1)
    found = [Instance("fetch", -1, OK), *instances([OK, F, F, SK, SK]), Instance("summarize", -1, UF)]
    reset = plan(spec, found, [("send", None)], only_states=[F])
    assert [(i.task_id, i.map_index) for i in reset] == [("send", n) for n in (1, 2, 3, 4)] + [("summarize", -1)]
    skipped_by_itself = [*instances([OK, F]), Instance("send", 2, SK, 1)]  # SkipTask: it ran, so it stays
    assert [i.map_index for i in plan(spec, skipped_by_itself, [("send", 1)])] == [1]


def test_past_the_tolerance_a_pending_retry_is_abandoned_too() -> None:
    counts = {"fetch": {OK: 1}, "send": {OK: 6, F: 3, TIState.UP_FOR_RETRY: 1}, "summarize": {UF: 1}}
    assert decide(shipping(2), counts) == [
        Abandon("send", "not started: send had 3 failed, past tolerated_failures=2: the task failed")
    ]
