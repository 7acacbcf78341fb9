"""Scheduler decisions as a pure function of counts."""

from minimap.authoring.dag import DAG
from minimap.authoring.taskflow import task
from minimap.rules.decisions import FinishRun, Prepare, Settle, decide, runs_to_start
from minimap.snapshot import DagSpec
from minimap.states import RunState, TIState

S, Q, R, OK, F, UF, SK = (
    TIState.SCHEDULED,
    TIState.QUEUED,
    TIState.RUNNING,
    TIState.SUCCESS,
    TIState.FAILED,
    TIState.UPSTREAM_FAILED,
    TIState.SKIPPED,
)


def shipping() -> DagSpec:
    with DAG("d") as dag:

        @task
        def fetch():
            return []

        @task
        def send(item):
            return item

        @task
        def summarize(r):
            return r

        summarize(send.expand(item=fetch()))
    return DagSpec.from_json(dag.snapshot())


def test_a_new_run_prepares_its_root_only() -> None:
    assert decide(shipping(), {"fetch": {S: 1}, "send": {S: 1}, "summarize": {S: 1}}) == [Prepare("fetch")]


def test_the_mapped_task_is_prepared_once_its_producer_succeeded() -> None:
    assert decide(shipping(), {"fetch": {OK: 1}, "send": {S: 1}, "summarize": {S: 1}}) == [Prepare("send")]


def test_one_failed_instance_fails_the_downstream_at_once() -> None:
    counts = {"fetch": {OK: 1}, "send": {OK: 5, F: 1, R: 3, Q: 3}, "summarize": {S: 1}}
    assert decide(shipping(), counts) == [Settle("summarize", UF)]


def test_the_downstream_waits_for_every_mapped_instance() -> None:
    assert decide(shipping(), {"fetch": {OK: 1}, "send": {OK: 11, R: 1}, "summarize": {S: 1}}) == []


def test_the_run_ends_failed_when_a_leaf_is_upstream_failed() -> None:
    counts = {"fetch": {OK: 1}, "send": {OK: 11, F: 1}, "summarize": {UF: 1}}
    assert decide(shipping(), counts) == [FinishRun(RunState.FAILED)]


def test_the_run_ends_success_when_every_leaf_succeeded() -> None:
    counts = {"fetch": {OK: 1}, "send": {OK: 12}, "summarize": {OK: 1}}
    assert decide(shipping(), counts) == [FinishRun(RunState.SUCCESS)]


def test_a_zero_length_producer_skips_downstream() -> None:
    assert decide(shipping(), {"fetch": {OK: 1}, "send": {SK: 1}, "summarize": {S: 1}}) == [Settle("summarize", SK)]


def test_runs_to_start_fill_max_active_runs_oldest_first() -> None:
    q, r = RunState.QUEUED, RunState.RUNNING
    assert runs_to_start([(1, r), (2, q), (3, q), (4, q)], 3) == [2, 3]
    assert runs_to_start([(1, r), (2, r), (3, q)], 1) == []  # already over: nothing starts, nothing stops
    assert runs_to_start([(5, q), (6, q)], 16) == [5, 6]
    assert runs_to_start([], 1) == []
