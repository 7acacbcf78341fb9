"""The SQL of mapped task groups: make lanes, find the lanes with a step ready to judge, queue or settle them.

Every statement runs inside the run's scheduling transaction (its row lock held, see `Store.scheduling`),
so lanes are made and judged by one scheduler at a time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, delete, exists, func, insert, select, update

from minimap.rules.tolerance import Counts, LaneTally, tallies_needed
from minimap.snapshot import DagSpec, GroupSpec
from minimap.states import UNFINISHED, TIState
from minimap.store.rows import decode, utcnow
from minimap.store.tables import task_instance

ti = task_instance.c
up = task_instance.alias("up")
_OPEN = [s.value for s in UNFINISHED]
BAD = [TIState.FAILED.value, TIState.UPSTREAM_FAILED.value]
_WAITING = [TIState.SCHEDULED.value, TIState.QUEUED.value]
_CHUNK = 5000


@dataclass
class LaneFacts:
    """Some lanes of one group (every step's state in each), and how many lanes are in flight."""

    lanes: dict[int, dict[str, TIState]] = field(default_factory=dict)
    in_flight: int = 0


def unexpanded(conn: Connection, run_id: str, spec: DagSpec) -> frozenset[str]:
    """Mapped groups whose tasks still hold their waiting placeholder (map_index -1): no lanes yet."""
    first = {g.tasks[0]: gid for gid, g in spec.groups.items() if g.mapped and g.tasks}
    if not first:
        return frozenset()
    q = select(ti.task_id).where(
        ti.run_id == run_id, ti.task_id.in_(list(first)), ti.map_index == -1, ti.state == TIState.SCHEDULED.value
    )
    return frozenset(first[t] for t in conn.execute(q).scalars())


def make_lanes(
    conn: Connection, run_id: str, dag_id: str, spec: DagSpec, group: GroupSpec, lanes: Sequence[Any]
) -> None:
    """Replace each task's placeholder by one waiting instance per lane, holding the lane's arguments."""
    key = and_(ti.run_id == run_id, ti.task_id.in_(list(group.tasks)))
    if not lanes:
        settle_placeholders(conn, run_id, group, TIState.SKIPPED)
        return
    conn.execute(delete(task_instance).where(key, ti.map_index == -1, ti.state == TIState.SCHEDULED.value))
    docs = [json.dumps({"kw": {}, "lane": lane}, separators=(",", ":")) for lane in lanes]
    for tid in group.tasks:
        rows = [
            {"run_id": run_id, "task_id": tid, "map_index": i, "dag_id": dag_id, "state": TIState.SCHEDULED.value,
             "try_number": 0, "max_tries": spec.tasks[tid].retries + 1, "args": doc, "queued_at": None}
            for i, doc in enumerate(docs)
        ]  # fmt: skip
        for start in range(0, len(rows), _CHUNK):
            conn.execute(insert(task_instance), rows[start : start + _CHUNK])


def settle_placeholders(
    conn: Connection, run_id: str, group: GroupSpec, state: TIState, error: str | None = None
) -> None:
    """The group will have no lanes: its tasks' placeholders end in `state`."""
    conn.execute(
        update(task_instance)
        .where(
            ti.run_id == run_id,
            ti.task_id.in_(list(group.tasks)),
            ti.map_index == -1,
            ti.state == TIState.SCHEDULED.value,
        )
        .values(state=state.value, ended_at=utcnow(), error=error)
    )


def facts(conn: Connection, run_id: str, spec: DagSpec, group: GroupSpec) -> LaneFacts:
    """The lanes that have a waiting step worth judging now, with every step's state in them.

    A step is worth judging when its upstream in the lane is finished (a first step: always). With
    `max_active_lanes`, first steps are judged only in the lanes in flight and the next lanes that may start.
    """
    tasks = tuple(group.tasks)
    indexes: set[int] = set()
    in_flight = 0
    firsts = tuple(t for t in tasks if not any(spec.in_lane(u, t) for u in spec.tasks[t].upstream))
    for tid in tasks:
        ups = tuple(u for u in spec.tasks[tid].upstream if spec.in_lane(u, tid))
        if ups:
            indexes.update(conn.execute(_ready(tid, ups), {"run_id": run_id}).scalars())
    if group.max_active_lanes is None:
        indexes.update(conn.execute(_waiting_firsts(firsts), {"run_id": run_id}).scalars())
    else:
        flying, fresh = _lane_spans(tasks)
        in_flight_lanes = list(conn.execute(flying, {"run_id": run_id}).scalars())
        in_flight = len(in_flight_lanes)
        indexes.update(in_flight_lanes)
        room = group.max_active_lanes - in_flight
        if room > 0:
            indexes.update(conn.execute(fresh, {"run_id": run_id, "room": room}).scalars())
    found = LaneFacts(in_flight=in_flight)
    ordered = sorted(indexes)
    for start in range(0, len(ordered), _CHUNK):
        chunk = {"run_id": run_id, "indexes": ordered[start : start + _CHUNK]}
        for tid, i, state in conn.execute(_lane_states(tasks), chunk):
            found.lanes.setdefault(i, {})[tid] = TIState(state)
    return found


# Statements are built once per group shape, with bind parameters (building one costs more than running it).


@functools.cache
def _ready(task_id: str, ups: tuple[str, ...]) -> Any:
    """Waiting instances of `task_id` whose upstream in the same lane is finished: walks the state index for the
    waiting steps and the primary key (run, task, map_index) for each one's upstream in its lane."""
    return select(ti.map_index).where(
        ti.run_id == bindparam("run_id"),
        ti.task_id == task_id,
        ti.state == TIState.SCHEDULED.value,
        ti.map_index >= 0,
        ~exists().where(
            up.c.run_id == ti.run_id,
            up.c.task_id.in_(ups),
            up.c.map_index == ti.map_index,
            up.c.state.in_(_OPEN),
        ),
    )


@functools.cache
def _waiting_firsts(firsts: tuple[str, ...]) -> Any:
    """Waiting first steps (nothing in their lane before them): the state index alone."""
    return select(ti.map_index).where(
        ti.run_id == bindparam("run_id"), ti.task_id.in_(firsts), ti.state == TIState.SCHEDULED.value, ti.map_index >= 0
    )


@functools.cache
def _lane_spans(tasks: tuple[str, ...]) -> tuple[Any, Any]:
    """Lanes in flight (a step started, a step not finished), and the first lanes not started (LIMIT :room):
    one aggregate over the group's instances by primary key, only when the group has max_active_lanes."""
    started = func.sum(case((ti.state != TIState.SCHEDULED.value, 1), else_=0))
    open_ = func.sum(case((ti.state.in_(_OPEN), 1), else_=0))
    lanes = (
        select(ti.map_index)
        .where(ti.run_id == bindparam("run_id"), ti.task_id.in_(tasks), ti.map_index >= 0)
        .group_by(ti.map_index)
    )
    fresh = lanes.having(started == 0).order_by(ti.map_index).limit(bindparam("room"))
    return lanes.having(and_(started > 0, open_ > 0)), fresh


@functools.cache
def _lane_states(tasks: tuple[str, ...]) -> Any:
    """Every step's state in the lanes `:indexes` (primary key lookups)."""
    return select(ti.task_id, ti.map_index, ti.state).where(
        ti.run_id == bindparam("run_id"),
        ti.task_id.in_(tasks),
        ti.map_index.in_(bindparam("indexes", expanding=True)),
    )


def lane_inputs(
    conn: Connection, run_id: str, task_id: str, ups: Iterable[str], indexes: Sequence[int]
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """For lanes `indexes`: the stored lane arguments of `task_id`, and the results of `ups` in each lane
    (an upstream that did not succeed is left out)."""
    lanes: dict[int, dict[str, Any]] = {}
    results: dict[int, dict[str, Any]] = {i: {} for i in indexes}
    ups = tuple(ups)
    for start in range(0, len(indexes), _CHUNK):
        params = {"run_id": run_id, "task_id": task_id, "indexes": list(indexes[start : start + _CHUNK])}
        for i, args in conn.execute(_LANE_ARGS, params):
            lane = json.loads(args).get("lane") if args else None
            lanes[i] = lane if isinstance(lane, dict) else {}
        if ups:
            for r in conn.execute(_lane_results(ups), params):
                results[r.map_index][r.task_id] = decode(r.result)
    return lanes, results


_LANE_ARGS = select(ti.map_index, ti.args).where(
    ti.run_id == bindparam("run_id"),
    ti.task_id == bindparam("task_id"),
    ti.map_index.in_(bindparam("indexes", expanding=True)),
)


@functools.cache
def _lane_results(ups: tuple[str, ...]) -> Any:
    return select(ti.task_id, ti.map_index, ti.result).where(
        ti.run_id == bindparam("run_id"),
        ti.task_id.in_(ups),
        ti.map_index.in_(bindparam("indexes", expanding=True)),
        ti.state == TIState.SUCCESS.value,
    )


def queue_lanes(conn: Connection, run_id: str, task_id: str, args: Mapping[int, str]) -> None:
    """Queue the waiting instances of `task_id` in these lanes, each with its resolved arguments."""
    now = utcnow()
    rows = [{"k_run_id": run_id, "k_task_id": task_id, "k_map_index": i, "v_args": a, "v_now": now}
            for i, a in args.items()]  # fmt: skip
    if rows:
        conn.execute(_QUEUE, rows)


_QUEUE = (
    update(task_instance)
    .where(
        ti.run_id == bindparam("k_run_id"),
        ti.task_id == bindparam("k_task_id"),
        ti.map_index == bindparam("k_map_index"),
        ti.state == TIState.SCHEDULED.value,
    )
    .values(state=TIState.QUEUED.value, args=bindparam("v_args"), queued_at=bindparam("v_now"))
)


def settle_lanes(
    conn: Connection, run_id: str, task_id: str, indexes: Sequence[int], state: TIState, error: str | None = None
) -> None:
    """The waiting instances of `task_id` in these lanes end in `state` without running."""
    for start in range(0, len(indexes), _CHUNK):
        conn.execute(
            update(task_instance)
            .where(
                ti.run_id == run_id,
                ti.task_id == task_id,
                ti.map_index.in_(list(indexes[start : start + _CHUNK])),
                ti.state == TIState.SCHEDULED.value,
            )
            .values(state=state.value, ended_at=utcnow(), error=error)
        )


def aligned_results(conn: Connection, run_id: str, task_id: str, spec: DagSpec | None = None) -> list[Any]:
    """A group task's results lane by lane, in index order; None where a lane's step did not succeed. In a group
    with tolerated_failures (given `spec`), its failed lanes are left out (`failed_lanes`)."""
    q = (
        select(ti.map_index, ti.state, ti.result)
        .where(ti.run_id == run_id, ti.task_id == task_id, ti.map_index >= 0, ti.state != TIState.REMOVED.value)
        .order_by(ti.map_index)
    )
    group = spec.lane_group(task_id) if spec is not None else None
    left_out = set(failed_lanes(conn, run_id, group)) if group is not None and group.tolerated_failures else set()
    return [
        decode(r.result) if r.state == TIState.SUCCESS.value else None
        for r in conn.execute(q)
        if r.map_index not in left_out
    ]


@functools.cache
def _failed_lanes(tasks: tuple[str, ...]) -> Any:
    """Lanes with a step failed or upstream_failed, in order: ix_task_instance_run_task_state_times alone."""
    return (
        select(ti.map_index)
        .where(ti.run_id == bindparam("run_id"), ti.task_id.in_(tasks), ti.map_index >= 0, ti.state.in_(BAD))
        .group_by(ti.map_index)
        .order_by(ti.map_index)
    )


def failed_lanes(conn: Connection, run_id: str, group: GroupSpec) -> list[int]:
    """The map indexes of the group's failed lanes (a step failed or upstream_failed), in order."""
    return list(conn.execute(_failed_lanes(tuple(group.tasks)), {"run_id": run_id}).scalars())


@functools.cache
def tally_query(tasks: tuple[str, ...]) -> Any:
    """Lanes, failed lanes and lanes not started: one aggregate over the group's instances by primary key."""
    per_lane = (
        select(
            ti.map_index,
            func.max(case((ti.state.in_(BAD), 1), else_=0)).label("failed"),
            func.min(case((ti.state.in_(_WAITING), 1), else_=0)).label("unstarted"),
        )
        .where(
            ti.run_id == bindparam("run_id"),
            ti.task_id.in_(tasks),
            ti.map_index >= 0,
            ti.state != TIState.REMOVED.value,
        )
        .group_by(ti.map_index)
        .subquery()
    )
    return select(
        func.count(), func.coalesce(func.sum(per_lane.c.failed), 0), func.coalesce(func.sum(per_lane.c.unstarted), 0)
    ).select_from(per_lane)


def tallies(conn: Connection, run_id: str, spec: DagSpec, counts: Counts) -> dict[str, LaneTally]:
    """The lanes of the mapped groups with tolerated_failures that have a failed step (`tallies_needed`)."""
    found: dict[str, LaneTally] = {}
    for gid in tallies_needed(spec, counts):
        lanes, failed, unstarted = conn.execute(tally_query(tuple(spec.groups[gid].tasks)), {"run_id": run_id}).one()
        found[gid] = LaneTally(int(lanes), int(failed), int(unstarted))
    return found


def abandon_lanes(conn: Connection, run_id: str, group: GroupSpec, reason: str) -> None:
    """The group failed past its tolerance: every step of each lane not started (every step scheduled or
    queued) is skipped with `reason`; a lane one of whose steps started runs on. One statement whose rows keep
    their state check, so an instance a worker claimed meanwhile is left alone (the claim refuses the rest:
    store/tolerance.py)."""
    conn.execute(
        update(task_instance)
        .where(
            ti.run_id == run_id,
            ti.task_id.in_(list(group.tasks)),
            ti.map_index >= 0,
            ti.state.in_(_WAITING),
            ~exists().where(
                up.c.run_id == ti.run_id,
                up.c.task_id.in_(list(group.tasks)),
                up.c.map_index == ti.map_index,
                up.c.state.not_in(_WAITING),
            ),
        )
        .values(state=TIState.SKIPPED.value, ended_at=utcnow(), error=reason)
    )


class LaneTx:
    """The lane operations of one locked scheduling pass (`Store.scheduling`): what the scheduler calls."""

    def __init__(self, conn: Connection, run_id: str, dag_id: str) -> None:
        self.conn, self.run_id, self.dag_id = conn, run_id, dag_id

    def unexpanded(self, spec: DagSpec) -> frozenset[str]:
        return unexpanded(self.conn, self.run_id, spec)

    def make_lanes(self, spec: DagSpec, group: GroupSpec, lanes: Sequence[Any]) -> None:
        make_lanes(self.conn, self.run_id, self.dag_id, spec, group, lanes)

    def settle_placeholders(self, group: GroupSpec, state: TIState, error: str | None = None) -> None:
        settle_placeholders(self.conn, self.run_id, group, state, error)

    def facts(self, spec: DagSpec, group: GroupSpec) -> LaneFacts:
        return facts(self.conn, self.run_id, spec, group)

    def inputs(
        self, task_id: str, ups: Iterable[str], indexes: Sequence[int]
    ) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
        return lane_inputs(self.conn, self.run_id, task_id, ups, indexes)

    def queue(self, task_id: str, args: Mapping[int, str]) -> None:
        queue_lanes(self.conn, self.run_id, task_id, args)

    def settle(self, task_id: str, indexes: Sequence[int], state: TIState, error: str | None = None) -> None:
        settle_lanes(self.conn, self.run_id, task_id, indexes, state, error)

    def tallies(self, spec: DagSpec, counts: Counts) -> dict[str, LaneTally]:
        return tallies(self.conn, self.run_id, spec, counts)

    def abandon(self, group: GroupSpec, reason: str) -> None:
        abandon_lanes(self.conn, self.run_id, group, reason)
