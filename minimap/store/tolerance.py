"""The claim's check of failure tolerance: a task past its tolerated_failures starts no more instances.

Called by the claim under its lock (storage.py), so once a failure past the tolerance is committed, no worker
anywhere starts another instance of that task; the next scheduling pass marks them skipped. A mapped group past
its tolerated_failures (failed lanes) with lanes not started yet: no step of it is claimed until the next
scheduling pass has skipped those lanes (then the lanes under way run on).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, func, select

from minimap.rules.tolerance import Standing, standing, tolerance
from minimap.snapshot import DagSpec, GroupSpec
from minimap.states import TIState
from minimap.store.lanes import BAD, tally_query
from minimap.store.tables import task_instance

ti = task_instance.c


def past_tolerance(
    conn: Connection, pairs: Iterable[tuple[str, str]], specs: Mapping[str, DagSpec]
) -> set[tuple[str, str]]:
    """Of the (run_id, task_id) pairs, those whose task has failed past its tolerated_failures."""
    stopped: set[tuple[str, str]] = set()
    groups: dict[tuple[str, str], bool] = {}
    for run_id, task_id in set(pairs):
        task = specs[run_id].tasks[task_id]
        group = specs[run_id].lane_group(task_id)
        if group is not None and group.tolerated_failures is not None:
            if (run_id, group.group_id) not in groups:
                groups[run_id, group.group_id] = _group_stopped(conn, run_id, group)
            if groups[run_id, group.group_id]:
                stopped.add((run_id, task_id))
            continue
        if task.tolerated_failures is None:
            continue
        # ix_task_instance_run_task_state_times: the task's instances counted by state from the index alone
        q = select(ti.state, func.count()).where(ti.run_id == run_id, ti.task_id == task_id).group_by(ti.state)
        counts = {TIState(s): int(n) for s, n in conn.execute(q)}
        if standing(task, counts) is Standing.EXCEEDED:
            stopped.add((run_id, task_id))
    return stopped


def _group_stopped(conn: Connection, run_id: str, group: GroupSpec) -> bool:
    """Whether the group's failed lanes are past its tolerance while some lanes have not started."""
    # ix_task_instance_run_task_state_times: a failed step of the group, found in the index
    q = select(ti.map_index).where(ti.run_id == run_id, ti.task_id.in_(list(group.tasks)), ti.state.in_(BAD))
    if conn.execute(q.limit(1)).first() is None:
        return False
    lanes, failed, unstarted = conn.execute(tally_query(tuple(group.tasks)), {"run_id": run_id}).one()
    return bool(unstarted) and not tolerance(group.tolerated_failures).allows(int(failed), int(lanes))
