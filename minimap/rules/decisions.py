"""The scheduler's decisions as a pure function: a DAG's structure + per-task counts -> actions.

Decisions are made per task, not per instance: every instance of a task has the same upstream (every
mapped instance of an upstream task counts as one upstream), so one verdict covers them all. The tasks of
a mapped task group are the exception: they are decided lane by lane (see `minimap.rules.lanes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from minimap.rules import tolerance
from minimap.rules.lanes import ExpandGroup, SettleGroup, group_actions, outside_counts
from minimap.rules.tolerance import (
    NO_TALLIES,
    Standing,
    Tallies,
    group_standing,
    group_verdict,
    seen_upstream,
    standing,
)
from minimap.rules.triggerrules import EARLY_ON_SUCCESS, UpstreamCounts, Verdict, evaluate
from minimap.snapshot import DagSpec
from minimap.states import UNFINISHED, RunState, TIState


@dataclass(frozen=True)
class Prepare:
    """The task's waiting instances may run: build their arguments (expanding if mapped) and queue them."""

    task_id: str


@dataclass(frozen=True)
class Settle:
    """The task's waiting instances will not run: give them `state` (skipped or upstream_failed)."""

    task_id: str
    state: TIState


@dataclass(frozen=True)
class Abandon:
    """The task failed past its tolerance: its instances that have not started never will (skipped, `reason`),
    and those waiting for a retry get none (failed)."""

    task_id: str
    reason: str


@dataclass(frozen=True)
class AbandonLanes:
    """The mapped group failed past its tolerance: its lanes not started never will (every step skipped,
    `reason`); the lanes under way run to their end."""

    group_id: str
    reason: str


@dataclass(frozen=True)
class FinishRun:
    """Every instance is finished: the run ends in `state`."""

    state: RunState


Action = Prepare | Settle | Abandon | AbandonLanes | FinishRun | ExpandGroup | SettleGroup
Counts = Mapping[str, Mapping[TIState, int]]  # task_id -> state -> number of instances


def upstream_counts(spec: DagSpec, counts: Counts, task_id: str, tallies: Tallies = NO_TALLIES) -> UpstreamCounts:
    """How the instances of `task_id`'s upstream tasks stand (removed ones do not count; a tolerance applied)."""
    total = success = skipped = failed = upstream_failed = 0
    for up in spec.tasks[task_id].upstream:
        c = seen_upstream(spec, up, counts, tallies)
        total += sum(n for s, n in c.items() if s is not TIState.REMOVED)
        success += c.get(TIState.SUCCESS, 0)
        skipped += c.get(TIState.SKIPPED, 0)
        failed += c.get(TIState.FAILED, 0)
        upstream_failed += c.get(TIState.UPSTREAM_FAILED, 0)
    return UpstreamCounts(total, success, skipped, failed, upstream_failed)


def run_outcome(spec: DagSpec, counts: Counts, tallies: Tallies = NO_TALLIES) -> RunState | None:
    """The run's final state once nothing is left to do, else None."""
    if any(n for c in counts.values() for s, n in c.items() if s in UNFINISHED):
        return None
    for leaf in spec.leaves():
        c = seen_upstream(spec, leaf, counts, tallies)
        if c.get(TIState.FAILED, 0) or c.get(TIState.UPSTREAM_FAILED, 0):
            return RunState.FAILED
    return RunState.SUCCESS


def successes_needed(spec: DagSpec, counts: Counts) -> set[str]:
    """Tasks whose number of successful instances `decide` needs, given `counts` of every other state.

    Only the upstream tasks of a waiting task, and of those only the ones with no unfinished instance left (their
    total decides) or below a rule that fires early on a success (EARLY_ON_SUCCESS). Counting every success of a
    run on every pass would make each pass O(N) in a run of N instances.
    """
    needed: set[str] = set()
    for tid, task in spec.tasks.items():
        if not counts.get(tid, {}).get(TIState.SCHEDULED):
            continue
        for up in task.upstream:
            busy = any(n for s, n in counts.get(up, {}).items() if s in UNFINISHED)
            if not busy or task.trigger_rule in EARLY_ON_SUCCESS:
                needed.add(up)
    return needed


def decide(
    spec: DagSpec, counts: Counts, unexpanded: frozenset[str] = frozenset(), tallies: Tallies = NO_TALLIES
) -> list[Action]:
    """What to do now for a run whose instances stand as `counts`; `unexpanded`: mapped task groups whose
    lanes are not made yet (their tasks' lanes are decided by `lanes.lane_actions`); `tallies`: the lanes of
    the mapped groups with tolerated_failures that have a failed step (`tolerance.tallies_needed`)."""
    actions: list[Action] = list(group_actions(spec, counts, sorted(unexpanded)))
    for gid, tally in sorted(tallies.items()):
        group = spec.groups[gid]
        if tally.unstarted and group_standing(spec, group, counts, tally) is Standing.EXCEEDED:
            said = group_verdict(spec, group, counts, tally)
            actions.append(AbandonLanes(gid, f"not started: group {gid} had {said}"))
    for tid, task in spec.tasks.items():
        if task.group is not None:
            continue  # decided lane by lane (lanes.lane_actions)
        c = counts.get(tid, {})
        waiting = c.get(TIState.SCHEDULED) or c.get(TIState.QUEUED) or c.get(TIState.UP_FOR_RETRY)
        if waiting and standing(task, c) is Standing.EXCEEDED:
            actions.append(Abandon(tid, f"not started: {tid} had {tolerance.verdict(task, c)}"))
            continue
        if not c.get(TIState.SCHEDULED):
            continue
        upstream = outside_counts(spec, counts, tid, tallies)
        if upstream is None:
            continue  # a group it waits on still has lanes under way
        verdict = evaluate(task.trigger_rule, upstream)
        if verdict is Verdict.RUN:
            actions.append(Prepare(tid))
        elif verdict is not Verdict.WAIT:
            actions.append(Settle(tid, TIState(verdict.value)))
    if not actions and not unexpanded:
        outcome = run_outcome(spec, counts, tallies)
        if outcome is not None:
            actions.append(FinishRun(outcome))
    return actions


def runs_to_start(unfinished: Sequence[tuple[int, RunState]], max_active_runs: int) -> list[int]:
    """Of one DAG's unfinished runs (id, state), oldest first: the queued ones that may start now."""
    free = max_active_runs - sum(1 for _, state in unfinished if state is RunState.RUNNING)
    return [run_id for run_id, state in unfinished if state is RunState.QUEUED][: max(free, 0)]
