"""Mapped task groups as lanes (pure): when a group expands, and what each lane's waiting steps do.

Lane i of a group is map index i of each of its tasks. A step's upstream inside the group counts by its
lane alone (`b[i]` waits for `a[i]`); an upstream outside the group counts whole, every instance of it,
as for any task. A task that waits on a group's lanes from outside is judged once every lane is finished
(see `outside_counts`), so a failed lane never decides for the others before they have run -- unless the
group has `tolerated_failures` and its failed lanes went past it: then the group failed at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from minimap.rules.tolerance import NO_TALLIES, Standing, Tallies, seen_upstream, step_standing
from minimap.rules.triggerrules import UpstreamCounts, Verdict, evaluate
from minimap.snapshot import DagSpec, GroupSpec
from minimap.states import FINISHED, TIState

Counts = Mapping[str, Mapping[TIState, int]]  # task_id -> state -> number of instances
Lanes = Mapping[int, Mapping[str, TIState]]  # map_index -> task_id -> state, for some lanes of one group


@dataclass(frozen=True)
class ExpandGroup:
    """The group's input is known: give each of its tasks one instance per lane (none: all skipped)."""

    group_id: str


@dataclass(frozen=True)
class SettleGroup:
    """The group's input will never be known: its tasks end in `state` without lanes."""

    group_id: str
    state: TIState


@dataclass(frozen=True)
class QueueLanes:
    """These lanes' instances of `task_id` may run: build their arguments and queue them."""

    task_id: str
    indexes: tuple[int, ...]


@dataclass(frozen=True)
class SettleLanes:
    """These lanes' instances of `task_id` will not run: they end in `state`."""

    task_id: str
    indexes: tuple[int, ...]
    state: TIState


def add(a: UpstreamCounts, b: UpstreamCounts) -> UpstreamCounts:
    return UpstreamCounts(
        a.total + b.total, a.success + b.success, a.skipped + b.skipped, a.failed + b.failed,
        a.upstream_failed + b.upstream_failed,
    )  # fmt: skip


def whole(c: Mapping[TIState, int]) -> UpstreamCounts:
    """Every instance of one upstream task, each counted once (removed ones do not count)."""
    total = sum(n for s, n in c.items() if s is not TIState.REMOVED)
    return UpstreamCounts(
        total, c.get(TIState.SUCCESS, 0), c.get(TIState.SKIPPED, 0), c.get(TIState.FAILED, 0),
        c.get(TIState.UPSTREAM_FAILED, 0),
    )  # fmt: skip


def outside_counts(spec: DagSpec, counts: Counts, task_id: str, tallies: Tallies = NO_TALLIES) -> UpstreamCounts | None:
    """The upstream of `task_id` that is not in its own lane, counted whole; None while a group it waits on
    from outside still has a lane that is not finished (it is judged on every lane, never on some), unless that
    group failed past its tolerated_failures (`tallies`: failed lanes of the groups with one)."""
    total = UpstreamCounts()
    for up in spec.tasks[task_id].upstream:
        if spec.in_lane(up, task_id):
            continue
        c = seen_upstream(spec, up, counts, tallies)  # a failure within its tolerance counts as success
        if (
            spec.tasks[up].group is not None
            and any(n for s, n in c.items() if s not in FINISHED)
            and step_standing(spec, up, counts, tallies) is not Standing.EXCEEDED
        ):
            return None
        total = add(total, whole(c))
    return total


def group_actions(spec: DagSpec, counts: Counts, unexpanded: Iterable[str]) -> list[ExpandGroup | SettleGroup]:
    """For each group not expanded yet: expand it once every task its input comes from is finished."""
    actions: list[ExpandGroup | SettleGroup] = []
    for gid in unexpanded:
        sources = [counts.get(t, {}) for t in sorted(spec.groups[gid].refs())]
        if any(n for c in sources for s, n in c.items() if s not in FINISHED):
            continue
        failed = sum(c.get(s, 0) for c in sources for s in (TIState.FAILED, TIState.UPSTREAM_FAILED))
        if all(set(c) <= {TIState.SUCCESS} for c in sources):
            actions.append(ExpandGroup(gid))
        else:  # as a mapped task: an input that failed leaves its length unknown; a skipped one, nothing to do
            actions.append(SettleGroup(gid, TIState.UPSTREAM_FAILED if failed else TIState.SKIPPED))
    return actions


def lane_actions(
    spec: DagSpec, group: GroupSpec, counts: Counts, lanes: Lanes, in_flight: int = 0, tallies: Tallies = NO_TALLIES
) -> list[QueueLanes | SettleLanes]:
    """What the waiting instances in `lanes` do now, lane by lane.

    A lane none of whose instances has left `scheduled` is new; with `max_active_lanes`, new lanes start
    (lowest index first) only while fewer than that many lanes are in flight -- started, not finished -- so
    the lanes under way finish before others begin.
    """
    outside = {t: outside_counts(spec, counts, t, tallies) for t in group.tasks}
    room = None if group.max_active_lanes is None else group.max_active_lanes - in_flight
    queue: dict[str, list[int]] = {}
    settle: dict[tuple[str, TIState], list[int]] = {}
    for i in sorted(lanes):
        lane = lanes[i]
        if all(s is TIState.SCHEDULED for s in lane.values()):
            if room is not None and room <= 0:
                continue
            started = False
        else:
            started = True
        for tid in group.tasks:
            whole_upstream = outside[tid]
            if lane.get(tid) is not TIState.SCHEDULED or whole_upstream is None:
                continue
            verdict = evaluate(spec.tasks[tid].trigger_rule, _lane_counts(spec, tid, lane, whole_upstream))
            if verdict is Verdict.RUN:
                queue.setdefault(tid, []).append(i)
            elif verdict is not Verdict.WAIT:
                settle.setdefault((tid, TIState(verdict.value)), []).append(i)
            else:
                continue
            if not started and room is not None:
                room -= 1
                started = True
    actions: list[QueueLanes | SettleLanes] = [QueueLanes(t, tuple(ix)) for t, ix in queue.items()]
    actions.extend(SettleLanes(t, tuple(ix), s) for (t, s), ix in settle.items())
    return actions


def _lane_counts(spec: DagSpec, task_id: str, lane: Mapping[str, TIState], outside: UpstreamCounts) -> UpstreamCounts:
    """`outside` plus the task's upstream in this lane, one instance each."""
    inside = [lane[up] for up in spec.tasks[task_id].upstream if spec.in_lane(up, task_id) and up in lane]
    c: dict[TIState, int] = {}
    for s in inside:
        c[s] = c.get(s, 0) + 1
    return add(outside, whole(c))


def lane_state(states: Iterable[TIState]) -> str:
    """One word for a lane: running until every step is finished, then failed (a step failed or could
    not run for a failure), skipped (every step skipped), or success."""
    found = set(states)
    if not found:
        return "scheduled"
    if found - FINISHED:
        return "scheduled" if found == {TIState.SCHEDULED} else "running"
    if found & {TIState.FAILED, TIState.UPSTREAM_FAILED}:
        return "failed"
    if found <= {TIState.SKIPPED, TIState.REMOVED}:
        return "skipped"
    return "success"
