"""Mapped task groups without a database: authoring, the snapshot, lane decisions, lane clears."""

from __future__ import annotations

import pytest

from minimap import DAG, task, task_group
from minimap.exceptions import ClearError, DefinitionError, NotFoundError
from minimap.rules import clearing
from minimap.rules.clearing import Instance, group_targets, plan
from minimap.rules.decisions import FinishRun, Prepare, decide
from minimap.rules.expansion import LANE, ExpansionError, call_kwargs, lanes
from minimap.rules.lanes import ExpandGroup, QueueLanes, SettleGroup, SettleLanes, lane_actions, lane_state
from minimap.snapshot import DagSpec
from minimap.states import TIState

S, Q, R, OK, F, UF, SK = (
    TIState.SCHEDULED,
    TIState.QUEUED,
    TIState.RUNNING,
    TIState.SUCCESS,
    TIState.FAILED,
    TIState.UPSTREAM_FAILED,
    TIState.SKIPPED,
)


def orders(cap: int | None = None, rule: str = "all_success") -> DagSpec:
    """items -> [g.a -> g.b -> g.c] per item -> report"""
    with DAG("d") as dag:

        @task
        def items():
            return []

        @task
        def a(x, carrier):
            return x

        @task(trigger_rule=rule)
        def b(y=None):
            return y

        @task
        def c(z):
            return z

        @task
        def report(values):
            return values

        @task_group(max_active_lanes=cap)
        def g(x, carrier):
            return c(b(a(x, carrier)))

        report(g.partial(carrier="dhl").expand(x=items()))
    return DagSpec.from_json(dag.snapshot())


def test_the_snapshot_holds_the_group_and_its_lane_steps() -> None:
    spec = orders(cap=2)
    g = spec.groups["g"]
    assert g.mapped and g.tasks == ("g.a", "g.b", "g.c") and g.max_active_lanes == 2
    assert g.expand == {"x": {"ref": "items"}} and g.refs() == {"items"}
    assert spec.tasks["g.a"].kwargs == {"x": {"lane": "x"}, "carrier": {"lit": "dhl"}}
    assert spec.tasks["g.a"].group == "g" and spec.tasks["report"].group is None
    assert spec.tasks["items"].mapped_over and spec.tasks["g.a"].upstream == ("items",)
    assert spec.in_lane("g.a", "g.b") and not spec.in_lane("g.c", "report")
    assert DagSpec.from_json(spec.to_dict()) == spec


def test_plain_groups_prefix_ids_and_bind_edges_to_their_first_and_last_tasks() -> None:
    with DAG("d") as dag:

        @task
        def t(x=0):
            return x

        @task_group
        def inner():
            t(1) >> t(2)

        start = t.override(task_id="start")()
        first, second = inner(), inner.override(group_id="other")()
        start >> first >> second
    assert set(dag.tasks) == {"start", "inner.t", "inner.t__1", "other.t", "other.t__1"}
    assert dag.tasks["inner.t"].upstream_ids == {"start"}
    assert dag.tasks["other.t"].upstream_ids == {"inner.t__1"}
    spec = DagSpec.from_json(dag.snapshot())
    assert not spec.groups["inner"].mapped and spec.tasks["inner.t"].group is None


def test_expand_kwargs_gives_each_lane_its_dict_and_defaults_fill_gaps() -> None:
    with DAG("d") as dag:

        @task
        def t(x, y):
            return x

        @task_group
        def g(x, y=5):
            t(x, y)

        g.expand_kwargs([{"x": 1}, {"x": 2, "y": 3}])
    spec = DagSpec.from_json(dag.snapshot())
    made = lanes(spec.groups["g"].expand, spec.groups["g"].expand_kwargs, {})
    assert made == [{"x": 1}, {"x": 2, "y": 3}]
    assert call_kwargs(spec.tasks["g.t"], {LANE: made[0]}) == {"x": 1, "y": 5}
    assert call_kwargs(spec.tasks["g.t"], {LANE: made[1]}) == {"x": 2, "y": 3}


def test_expand_is_a_cross_product_in_airflows_order() -> None:
    assert lanes({"a": {"lit": [1, 2]}, "b": {"lit": ["x", "y"]}}, None, {}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"},
    ]  # fmt: skip
    with pytest.raises(ExpansionError, match="not a list or dict"):
        lanes({"a": {"ref": "up"}}, None, {"up": 3})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda g, t: g.expand(), "expand() of task group g needs at least one argument"),
        (lambda g, t: g.partial(x=1).expand(x=[1]), "'x' of task group g is given to both partial() and expand()"),
        (lambda g, t: g.partial(x=1).partial(x=2), "partial() got argument 'x' twice"),
        (lambda g, t: g.expand(nope=[1]), "unknown argument 'nope' for task group g"),
        (lambda g, t: g.expand(x=3), "expand() argument 'x' of task group g is a int"),
        (lambda g, t: g.expand_kwargs([1]), "expand_kwargs() of task group g got a int, not a dict"),
        (lambda g, t: g.override(max_active_lanes=2)(x=1), "max_active_lanes applies to a mapped task group"),
        (lambda g, t: g.override(colour=1), "unknown argument 'colour' to @task_group"),
    ],
)
def test_misuse_is_refused_as_airflow_refuses_it(body, message) -> None:  # type: ignore[no-untyped-def]
    with DAG("d"):

        @task
        def t(x):
            return x

        @task_group
        def g(x):
            t(x)

        with pytest.raises(DefinitionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            body(g, t)


def test_a_mapped_task_or_group_inside_a_mapped_group_is_refused() -> None:
    with DAG("d"):

        @task
        def t(x):
            return x

        @task_group
        def mapped_task(x):
            t.expand(x=[1, 2])

        @task_group
        def inner(y):
            t(y)

        @task_group
        def outer(x):
            inner.expand(y=[x])

        with pytest.raises(DefinitionError, match="task mapped_task.t is mapped inside the mapped task group"):
            mapped_task.expand(x=[1])
        with pytest.raises(DefinitionError, match="task group inner is mapped inside the mapped task group outer"):
            outer.expand(x=[1])


def test_a_lane_argument_used_outside_its_group_is_refused() -> None:
    with DAG("d"):

        @task
        def t(x):
            return x

        leaked = []

        @task_group
        def g(x):
            leaked.append(x)
            return t(x)

        g.expand(x=[1])
        with pytest.raises(DefinitionError, match="uses argument 'x' of the mapped task group g outside that group"):
            t(leaked[0])


# --- decisions ------------------------------------------------------------------------------------


def test_the_group_expands_once_its_input_is_finished() -> None:
    spec = orders()
    waiting = {"items": {R: 1}, "g.a": {S: 1}, "g.b": {S: 1}, "g.c": {S: 1}, "report": {S: 1}}
    assert decide(spec, waiting, frozenset({"g"})) == []
    done = {**waiting, "items": {OK: 1}}
    assert decide(spec, done, frozenset({"g"})) == [ExpandGroup("g")]
    assert decide(spec, {**waiting, "items": {F: 1}}, frozenset({"g"})) == [SettleGroup("g", UF)]
    assert decide(spec, {**waiting, "items": {SK: 1}}, frozenset({"g"})) == [SettleGroup("g", SK)]


def test_the_consumer_waits_for_every_lane_then_follows_its_rule() -> None:
    spec = orders()
    running = {"items": {OK: 1}, "g.a": {OK: 3}, "g.b": {OK: 2, UF: 1}, "g.c": {OK: 1, F: 1, R: 1}, "report": {S: 1}}
    assert decide(spec, running) == []  # a failed lane does not decide for the one still running
    finished = {**running, "g.c": {OK: 2, F: 1}}
    assert [type(a).__name__ for a in decide(spec, finished)] == ["Settle"]
    assert decide(spec, {**finished, "g.c": {OK: 3}}) == [Prepare("report")]
    assert decide(spec, {**finished, "report": {OK: 1}, "g.c": {OK: 3}}) == [
        FinishRun(decide.__globals__["RunState"].SUCCESS)
    ]


def steps(a: TIState, b: TIState = S, c: TIState = S) -> dict[str, TIState]:
    return {"g.a": a, "g.b": b, "g.c": c}


def test_each_step_waits_for_its_own_lane_only() -> None:
    spec = orders()
    counts = {"items": {OK: 1}}
    found = lane_actions(spec, spec.groups["g"], counts, {0: steps(OK), 1: steps(R), 2: steps(F), 3: steps(S)})
    assert set(found) == {QueueLanes("g.b", (0,)), QueueLanes("g.a", (3,)), SettleLanes("g.b", (2,), UF)}


@pytest.mark.parametrize(
    ("rule", "upstream", "verdict"),
    [
        ("one_failed", OK, SK),
        ("one_failed", F, "run"),
        ("all_done", F, "run"),
        ("none_failed_min_one_success", SK, SK),
        ("none_failed_min_one_success", F, UF),
        ("none_failed_min_one_success", OK, "run"),
        ("all_success", SK, SK),
    ],
)
def test_trigger_rules_are_decided_on_the_lane_never_on_other_lanes(rule: str, upstream: TIState, verdict) -> None:  # type: ignore[no-untyped-def]
    spec = orders(rule=rule)
    other = {1: steps(F if upstream is OK else OK, OK), 2: steps(R)}  # other lanes must not sway lane 0
    found = lane_actions(spec, spec.groups["g"], {"items": {OK: 1}}, {0: steps(upstream), **other})
    mine = [a for a in found if 0 in a.indexes and a.task_id == "g.b"]
    assert mine == ([QueueLanes("g.b", (0,))] if verdict == "run" else [SettleLanes("g.b", (0,), verdict)])


def test_max_active_lanes_advances_started_lanes_before_starting_new_ones() -> None:
    spec = orders(cap=2)
    group = spec.groups["g"]
    lanes_now = {0: steps(OK), 1: steps(R), 2: steps(S), 3: steps(S)}
    # lanes 0 and 1 are in flight: lane 0 moves on, no new lane starts
    assert lane_actions(spec, group, {"items": {OK: 1}}, lanes_now, in_flight=2) == [QueueLanes("g.b", (0,))]
    # one lane in flight: the lowest new lane starts, and only one
    found = lane_actions(spec, group, {"items": {OK: 1}}, {0: steps(OK, OK, R), 2: steps(S), 3: steps(S)}, 1)
    assert found == [QueueLanes("g.a", (2,))]


def test_lane_state_summarises_a_lane() -> None:
    assert lane_state([S, S]) == "scheduled"
    assert lane_state([OK, S]) == "running"
    assert lane_state([OK, F, UF]) == "failed"
    assert lane_state([SK, SK]) == "skipped"
    assert lane_state([OK, SK]) == "success"


# --- clears ---------------------------------------------------------------------------------------


def instances(lane_states: dict[int, dict[str, TIState]], report: TIState = UF) -> list[Instance]:
    rows = [Instance("items", -1, OK), Instance("report", -1, report)]
    rows += [Instance(t, i, s) for i, lane in lane_states.items() for t, s in lane.items()]
    return rows


def test_a_clear_in_one_lane_resets_that_lane_and_the_consumer_only() -> None:
    spec = orders()
    found = instances({0: steps(OK, OK, OK), 3: steps(OK, F, UF), 5: steps(F, UF, UF)})
    reset = plan(spec, found, [("g.b", 3)])
    assert [(i.task_id, i.map_index) for i in reset] == [("g.b", 3), ("g.c", 3), ("report", -1)]


def test_a_clear_of_a_step_outside_a_group_resets_every_lane() -> None:
    spec = orders()
    found = instances({0: steps(SK, SK, SK), 1: steps(SK, SK, SK)})
    reset = plan(spec, found, [("items", -1)], downstream_all=True)
    assert len(reset) == 1 + 6 + 1


def test_group_targets_rerun_lanes_from_their_first_step_that_did_not_succeed() -> None:
    spec = orders()
    found = instances({2: steps(OK, F, UF), 4: steps(OK, OK, OK), 6: steps(F, UF, UF)})
    targets, states = group_targets(spec, "g", [2], None)
    reset = plan(spec, found, targets, states)
    assert [(i.task_id, i.map_index) for i in reset] == [("g.b", 2), ("g.c", 2), ("report", -1)]
    targets, states = group_targets(spec, "g", [], [F])
    reset = plan(spec, found, targets, states)
    assert [(i.task_id, i.map_index) for i in reset] == [
        ("g.a", 6), ("g.b", 2), ("g.b", 6), ("g.c", 2), ("g.c", 6), ("report", -1),
    ]  # fmt: skip
    with pytest.raises(NotFoundError, match="no mapped task group 'h'"):
        group_targets(spec, "h", [1], None)
    with pytest.raises(ClearError, match="say which lanes of g"):
        group_targets(spec, "g", [], None)
    with pytest.raises(ClearError, match="choose one with --task, or a lane with --group g"):
        clearing.resolve_task(spec, found, [2])


def test_a_waiting_step_says_what_it_waits_for_in_its_lane() -> None:
    from datetime import datetime, timezone

    from minimap.rules.waiting import WaitFacts, waiting_reason

    spec = orders(cap=2)
    now = datetime.now(timezone.utc)
    facts = WaitFacts(spec, "g.b", 4, S, now, upstream={"g.a": {"running": 1}})
    assert waiting_reason(facts) == "waiting for upstream g.a (0 of 1 done; 1 running)"
    facts = WaitFacts(spec, "g.a", 4, S, now, upstream={"items": {"success": 1}})
    assert "a new lane starts only while fewer than max_active_lanes=2 are in flight" in str(waiting_reason(facts))
    facts = WaitFacts(spec, "g.a", -1, S, now, upstream={"items": {"success": 1}})
    assert waiting_reason(facts) == "waiting for task group g to be expanded into lanes"
