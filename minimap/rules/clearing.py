"""What a clear resets (pure): the named instances, plus every downstream instance that has not
succeeded, so the run can finish -- and never an instance that succeeded, unless asked.

Downstream follows lanes: from lane i of a mapped task group, the group's next steps are reset in lane i
only; a task outside the group (a consumer of every lane) is reset whole, and from there on everything is.
A cleared failure that a tolerance let pass (a task's tolerated_failures, or a lane of a group's) also resets
what ran without it, even where it succeeded."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from minimap.exceptions import ClearError, NotFoundError
from minimap.snapshot import DagSpec
from minimap.states import TIState, can_move


@dataclass(frozen=True)
class Instance:
    task_id: str
    map_index: int
    state: TIState
    try_number: int = field(default=1, compare=False)  # 0: it never started (not part of which instance it is)


Target = tuple[str, int | None]  # (task_id, map_index); None: every index of the task


def describe_indexes(indexes: Sequence[int]) -> str:
    """`0–11`, or `0, 2, 5` when not contiguous."""
    s = sorted(indexes)
    if not s:
        return "no map indexes"
    if s == list(range(s[0], s[-1] + 1)) and len(s) > 2:
        return f"map indexes {s[0]}–{s[-1]}"
    return ("map index " if len(s) == 1 else "map indexes ") + ", ".join(map(str, s))


def resolve_task(spec: DagSpec, instances: Iterable[Instance], map_indexes: Sequence[int]) -> str:
    """The one mapped task that has every index in `map_indexes`, when --task was left out."""
    by_task: dict[str, set[int]] = {}
    for i in instances:
        by_task.setdefault(i.task_id, set()).add(i.map_index)
    fits = [t for t, idx in by_task.items() if _indexed(spec, t) and set(map_indexes) <= idx]
    if len(fits) == 1:
        return fits[0]
    wanted = ", ".join(map(str, map_indexes))
    if not fits:
        mapped = [f"{t} has {describe_indexes(sorted(i))}" for t, i in by_task.items() if _indexed(spec, t)]
        raise NotFoundError(f"no mapped task has map index {wanted}" + (f" ({'; '.join(mapped)})" if mapped else ""))
    lanes = sorted({g for t in fits if (g := spec.tasks[t].group) is not None})
    hint = f", or a lane with --group {lanes[0]}" if lanes else ""
    raise ClearError(f"map index {wanted} exists in several tasks ({', '.join(fits)}): choose one with --task{hint}")


def _indexed(spec: DagSpec, task_id: str) -> bool:
    """Whether the task has map indexes: mapped, or a step of a mapped group's lanes."""
    t = spec.tasks[task_id]
    return t.mapped or t.group is not None


#: What a lane's clear (`--group` without `--state`) resets: the steps of the lane that did not succeed.
LANE_RERUN = (TIState.FAILED, TIState.UPSTREAM_FAILED, TIState.SKIPPED, TIState.UP_FOR_RETRY)


def group_targets(
    spec: DagSpec, group_id: str, map_indexes: Sequence[int], only_states: Sequence[TIState] | None
) -> tuple[list[Target], list[TIState]]:
    """A clear of lanes of a mapped group: (targets, states to clear). Lanes `map_indexes` (all lanes when
    none is given, then `only_states` picks them) are re-run from their first step that did not succeed."""
    group = spec.groups.get(group_id)
    if group is None or not group.mapped:
        mapped = [g for g, s in spec.groups.items() if s.mapped]
        known = f"its mapped task groups are {', '.join(mapped)}" if mapped else "it has no mapped task group"
        raise NotFoundError(f"no mapped task group {group_id!r} in DAG {spec.dag_id}; {known}")
    if not map_indexes and not only_states:
        raise ClearError(
            f"say which lanes of {group_id} to clear: --map-index N, or --state failed for every failed lane"
        )
    targets: list[Target] = [(t, i) for i in map_indexes for t in group.tasks] or [(t, None) for t in group.tasks]
    return targets, list(only_states or LANE_RERUN)


def plan(
    spec: DagSpec,
    instances: Sequence[Instance],
    targets: Sequence[Target],
    only_states: Sequence[TIState] | None = None,
    downstream_all: bool = False,
) -> list[Instance]:
    """The instances a clear of `targets` resets, in task order; raises if a target is unknown or running."""
    by_task: dict[str, dict[int, Instance]] = {}
    for i in instances:
        by_task.setdefault(i.task_id, {})[i.map_index] = i
    chosen: dict[tuple[str, int], Instance] = {}
    for task_id, map_index in targets:
        if task_id not in spec.tasks:
            raise NotFoundError(f"no task {task_id!r} in DAG {spec.dag_id}; its tasks are {', '.join(spec.tasks)}")
        have = by_task.get(task_id, {})
        if map_index is None:
            picked = list(have.values())
        elif map_index in have:
            picked = [have[map_index]]
        else:
            raise NotFoundError(f"task {task_id} has no map index {map_index}: it has {describe_indexes(list(have))}")
        for i in picked:
            if only_states and i.state not in only_states:
                continue
            chosen[i.task_id, i.map_index] = i
    running = [i for i in chosen.values() if not can_move(i.state, TIState.SCHEDULED)]
    if running:
        r = running[0]
        raise ClearError(f"{r.task_id}[{r.map_index}] is running right now; wait for it to end, then clear it")
    if not chosen:
        return []
    tolerant = _tolerated_failures(spec, chosen.values())
    for task_id in tolerant:  # instances a tolerance left unstarted start again with the failures cleared
        if spec.tasks[task_id].group is not None:
            continue  # a group's: whole lanes (below)
        for i in by_task[task_id].values():
            if i.state is TIState.SKIPPED and i.try_number == 0:
                chosen[i.task_id, i.map_index] = i
    for gid in sorted({g for t in tolerant if (g := spec.tasks[t].group) is not None}):
        for i in _unstarted_lanes(spec.groups[gid].tasks, by_task):
            chosen[i.task_id, i.map_index] = i
    rerun = spec.downstream_closure(tolerant)
    for i in _downstream(spec, by_task, list(chosen)):
        if i.state in (TIState.SCHEDULED, TIState.RUNNING, TIState.QUEUED):
            continue  # already waiting, or will finish and be judged again
        if downstream_all or i.state is not TIState.SUCCESS or i.task_id in rerun:
            chosen.setdefault((i.task_id, i.map_index), i)
    order = {t: n for n, t in enumerate(spec.tasks)}
    return sorted(chosen.values(), key=lambda i: (order[i.task_id], i.map_index))


def _tolerated_failures(spec: DagSpec, chosen: Iterable[Instance]) -> set[str]:
    """Tasks with a tolerated_failures among whose cleared instances one had failed, and steps of a mapped group
    with a tolerated_failures among whose cleared instances one had failed or was upstream_failed (a failed lane):
    what waits on them ran without that instance's result (that lane's), so it runs again once it is finished."""
    return {i.task_id for i in chosen if _tolerated(spec, i)}


def _tolerated(spec: DagSpec, i: Instance) -> bool:
    group = spec.lane_group(i.task_id)
    if group is not None:
        return group.tolerated_failures is not None and i.state in _LANE_FAILED
    return i.state is TIState.FAILED and spec.tasks[i.task_id].tolerated_failures is not None


_LANE_FAILED = (TIState.FAILED, TIState.UPSTREAM_FAILED)


def _unstarted_lanes(steps: Sequence[str], by_task: dict[str, dict[int, Instance]]) -> list[Instance]:
    """The instances of the lanes a group's tolerance left unstarted: every step skipped, none ever tried."""
    lanes: dict[int, list[Instance]] = {}
    for tid in steps:
        for i in by_task.get(tid, {}).values():
            if i.map_index >= 0:
                lanes.setdefault(i.map_index, []).append(i)
    return [
        i
        for lane in lanes.values()
        if all(i.state is TIState.SKIPPED and i.try_number == 0 for i in lane)
        for i in lane
    ]


def expected_reruns(spec: DagSpec, reset: Sequence[Instance]) -> set[tuple[str, int]]:
    """Succeeded instances in `reset` that run again because they ran without a tolerated failure (not a surprise
    to ask the user about: clearing that failure means exactly this)."""
    rerun = spec.downstream_closure(_tolerated_failures(spec, reset))
    return {(i.task_id, i.map_index) for i in reset if i.state is TIState.SUCCESS and i.task_id in rerun}


def _downstream(
    spec: DagSpec, by_task: dict[str, dict[int, Instance]], start: Sequence[tuple[str, int]]
) -> list[Instance]:
    """Every instance downstream of `start`: within a mapped group's lanes, the same lane only."""
    seen: set[tuple[str, int | None]] = set()
    found: dict[tuple[str, int], Instance] = {}
    todo: list[tuple[str, int | None]] = list(start)
    while todo:
        task_id, index = todo.pop()
        for down in spec.tasks[task_id].downstream:
            lane = index if index is not None and index >= 0 and spec.in_lane(task_id, down) else None
            if (down, lane) in seen or (down, None) in seen:
                continue
            seen.add((down, lane))
            have = by_task.get(down, {})
            picked = [have[lane]] if lane is not None and lane in have else list(have.values())
            for i in picked:
                found[i.task_id, i.map_index] = i
            todo.append((down, lane))
    return list(found.values())


@dataclass(frozen=True)
class Reset:
    """What a clear does to one task's chosen instances: back to `scheduled`, their error, retry time, end time and
    worker cleared, and `fresh_tries` more attempts allowed on top of those already made (try_number keeps counting,
    so the tries history stays whole): max_tries becomes `max_tries_after_clear(try_number, fresh_tries)`."""

    task_id: str
    map_indexes: tuple[int, ...]
    fresh_tries: int


def max_tries_after_clear(try_number: int, fresh_tries: int) -> int:
    """A cleared instance may run `fresh_tries` more times: its task's retries + 1, as if it were new."""
    return try_number + fresh_tries


def resets(spec: DagSpec, chosen: Sequence[Instance]) -> list[Reset]:
    """The instances `plan` chose, as one Reset per task (in the order they come), with the task's fresh tries."""
    by_task: dict[str, list[int]] = {}
    for i in chosen:
        by_task.setdefault(i.task_id, []).append(i.map_index)
    return [Reset(t, tuple(indexes), spec.tasks[t].retries + 1) for t, indexes in by_task.items()]
