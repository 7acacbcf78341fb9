"""A mapped task group's tolerated_failures (failed lanes) without a database: the snapshot, the standing,
what the consumer and the run see, when unstarted lanes are abandoned, and what a clear reruns."""

from __future__ import annotations

import pytest

from minimap import DAG, TaskGroup, task, task_group
from minimap.exceptions import DefinitionError
from minimap.rules.clearing import Instance, expected_reruns, group_targets, plan
from minimap.rules.decisions import AbandonLanes, FinishRun, Prepare, Settle, decide
from minimap.rules.lanes import QueueLanes, lane_actions
from minimap.rules.tolerance import LaneTally, Standing, group_standing, group_verdict, tallies_needed
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


def orders(tolerated: int | str | None = 2, leaf: bool = False) -> DagSpec:
    """items -> [g.a -> g.b] per item -> report (unless `leaf`: the group ends the run)"""
    with DAG("d") as dag:

        @task
        def items():
            return []

        @task
        def a(x):
            return x

        @task
        def b(y):
            return y

        @task
        def report(values):
            return values

        @task_group(tolerated_failures=tolerated)
        def g(x):
            return b(a(x))

        lanes = g.expand(x=items())
        if not leaf:
            report(lanes)
    return DagSpec.from_json(dag.snapshot())


def test_the_snapshot_holds_the_tolerance_and_reads_back() -> None:
    spec = orders("5%")
    assert spec.groups["g"].tolerated_failures == "5%"
    assert DagSpec.from_json(spec.to_dict()) == spec
    plain = orders(None)
    assert "tolerated_failures" not in plain.to_dict()["groups"]["g"]  # unset: stored as before the field was
    assert DagSpec.from_json(plain.to_dict()) == plain


def test_a_plain_group_or_a_bad_value_is_refused() -> None:
    with DAG("e"):

        @task
        def t(x):
            return x

        @task_group(tolerated_failures=1)
        def g(x):
            return t(x)

        with pytest.raises(DefinitionError, match="tolerated_failures applies to a mapped task group"):
            g(1)
        with pytest.raises(DefinitionError, match="tolerated_failures must be a whole number >= 0"):
            task_group(tolerated_failures="lots")(lambda x: t(x))


# 10 lanes; lanes 3 and 7 failed at b (b[3], b[7] failed), every lane finished
FINISHED = {"items": {OK: 1}, "g.a": {OK: 10}, "g.b": {OK: 8, F: 2}, "report": {S: 1}}


@pytest.mark.parametrize(
    ("tolerated", "failed", "standing"),
    [(2, 2, Standing.TOLERATED), (2, 3, Standing.EXCEEDED), ("20%", 2, Standing.TOLERATED),
     ("20%", 3, Standing.EXCEEDED), (None, 2, Standing.NONE)],
)  # fmt: skip
def test_the_edge_counts_failed_lanes(tolerated: int | str | None, failed: int, standing: Standing) -> None:
    spec = orders(tolerated)
    assert group_standing(spec, spec.groups["g"], FINISHED, LaneTally(10, failed, 0)) is standing


def test_within_the_tolerance_the_consumer_runs_once_every_lane_is_finished() -> None:
    spec = orders(2)
    assert tallies_needed(spec, FINISHED) == ["g"]
    tally = {"g": LaneTally(10, 2, 0)}
    assert decide(spec, FINISHED, tallies=tally) == [Prepare("report")]
    assert decide(orders(None), FINISHED) == [Settle("report", UF)]  # no tolerance: as before
    running = {**FINISHED, "g.b": {OK: 7, F: 2, R: 1}}
    assert decide(spec, running, tallies=tally) == []  # pending: waits for the lane under way
    done = {**FINISHED, "report": {OK: 1}}
    assert decide(spec, done, tallies=tally) == [FinishRun(RunState.SUCCESS)]
    alone = {t: c for t, c in FINISHED.items() if t != "report"}
    assert decide(orders(2, leaf=True), alone, tallies=tally) == [FinishRun(RunState.SUCCESS)]
    assert decide(orders(2, leaf=True), alone, tallies={"g": LaneTally(10, 3, 0)}) == [FinishRun(RunState.FAILED)]
    said = group_verdict(spec, spec.groups["g"], FINISHED, tally["g"])
    assert said == "2 lanes failed, within tolerated_failures=2: the group succeeded"


def test_an_upstream_failed_step_counts_its_lane_as_failed() -> None:
    spec = orders(1)
    counts = {"items": {OK: 1}, "g.a": {OK: 9, F: 1}, "g.b": {OK: 9, UF: 1}, "report": {S: 1}}
    assert decide(spec, counts, tallies={"g": LaneTally(10, 1, 0)}) == [Prepare("report")]


def test_past_the_tolerance_the_group_fails_at_once() -> None:
    spec = orders(2)
    # lanes 0-2 failed, lane 3 under way, lanes 4-9 not started
    counts = {"items": {OK: 1}, "g.a": {OK: 4, S: 6}, "g.b": {F: 3, R: 1, S: 6}, "report": {S: 1}}
    tally = {"g": LaneTally(10, 3, 6)}
    reason = "not started: group g had 3 lanes failed, past tolerated_failures=2: the group failed"
    assert decide(spec, counts, tallies=tally) == [AbandonLanes("g", reason), Settle("report", UF)]
    # once they are skipped, nothing more to abandon; the lane under way runs on
    after = {**counts, "g.a": {OK: 4, SK: 6}, "g.b": {F: 3, R: 1, SK: 6}, "report": {UF: 1}}
    assert decide(spec, after, tallies={"g": LaneTally(10, 3, 0)}) == []
    lanes = {3: {"g.a": OK, "g.b": S}}
    assert lane_actions(spec, spec.groups["g"], after, lanes, tallies={"g": LaneTally(10, 3, 0)}) == [
        QueueLanes("g.b", (3,))
    ]


def test_a_failed_input_is_not_tolerated() -> None:
    """An outside upstream of a step failed: every lane could not run, which is not the lanes' own failure."""
    with DAG("d") as dag:

        @task
        def items():
            return [1]

        @task
        def config():
            return {}

        @task
        def a(x, conf):
            return x

        @task
        def report(values):
            return values

        @task_group(tolerated_failures="100%")
        def g(x, conf):
            return a(x, conf)

        report(g.partial(conf=config()).expand(x=items()))
    spec = DagSpec.from_json(dag.snapshot())
    counts = {"items": {OK: 1}, "config": {F: 1}, "g.a": {UF: 1}, "report": {S: 1}}
    assert group_standing(spec, spec.groups["g"], counts, LaneTally(1, 1, 0)) is Standing.NONE
    assert decide(spec, counts, tallies={"g": LaneTally(1, 1, 0)}) == [Settle("report", UF)]


def instances(states_b: list[TIState], report: TIState = OK) -> list[Instance]:
    lanes = len(states_b)
    a = [Instance("g.a", i, SK if s is SK else OK, 0 if s is SK else 1) for i, s in enumerate(states_b)]
    b = [Instance("g.b", i, s, 0 if s is SK else 1) for i, s in enumerate(states_b)]
    return [Instance("items", -1, OK), *a, *b, Instance("report", -1, report)][: 1 + 2 * lanes + 1]


def test_clearing_a_tolerated_lane_reruns_it_and_the_consumer_only() -> None:
    spec = orders(2)
    have = instances([OK, OK, OK, F, OK, OK, OK, F, OK, OK])
    targets, states = group_targets(spec, "g", [3], None)
    found = plan(spec, have, targets, states)
    assert [(i.task_id, i.map_index) for i in found] == [("g.b", 3), ("report", -1)]
    assert expected_reruns(spec, found) == {("report", -1)}  # not a surprise to ask about
    found = plan(spec, have, [("g.b", 3)])
    assert [(i.task_id, i.map_index) for i in found] == [("g.b", 3), ("report", -1)]
    # without a tolerance the succeeded consumer is not rerun (it never ran without lane 3)
    assert [(i.task_id, i.map_index) for i in plan(orders(None), have, [("g.b", 3)])] == [("g.b", 3)]


def test_clearing_the_failed_lanes_past_the_tolerance_restarts_the_lanes_left_unstarted() -> None:
    spec = orders(2)
    have = instances([F, F, F, SK, SK], report=UF)
    targets, states = group_targets(spec, "g", [], [F])
    found = {(i.task_id, i.map_index) for i in plan(spec, have, targets, states)}
    assert found == {("g.b", 0), ("g.b", 1), ("g.b", 2), ("g.a", 3), ("g.b", 3), ("g.a", 4), ("g.b", 4), ("report", -1)}


@pytest.mark.parametrize("option", [{"tolerated_failures": 1}, {"max_active_lanes": 2}, {"map_index_template": "x"}])
def test_lane_options_on_a_with_task_group_that_is_never_mapped_are_refused(option: dict[str, object]) -> None:
    with DAG("w") as dag:

        @task
        def t() -> int:
            return 1

        with TaskGroup("g", **option):
            t()
    name = next(iter(option))
    with pytest.raises(DefinitionError, match=f"{name} applies to a mapped task group"):
        dag.spec()
