"""The claim's check of failure tolerance: a task past its tolerated_failures starts no more instances.

Called by the claim under its lock (storage.py), so once a failure past the tolerance is committed, no worker
anywhere starts another instance of that task; the next scheduling pass marks them skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, func, select

from minimap.rules.tolerance import Standing, standing
from minimap.snapshot import DagSpec
from minimap.states import TIState
from minimap.store.tables import task_instance

ti = task_instance.c


def past_tolerance(
    conn: Connection, pairs: Iterable[tuple[str, str]], specs: Mapping[str, DagSpec]
) -> set[tuple[str, str]]:
    """Of the (run_id, task_id) pairs, those whose task has failed past its tolerated_failures."""
    stopped: set[tuple[str, str]] = set()
    for run_id, task_id in set(pairs):
        task = specs[run_id].tasks[task_id]
        if task.tolerated_failures is None:
            continue
        # ix_task_instance_run_task_state_times: the task's instances counted by state from the index alone
        q = select(ti.state, func.count()).where(ti.run_id == run_id, ti.task_id == task_id).group_by(ti.state)
        counts = {TIState(s): int(n) for s, n in conn.execute(q)}
        if standing(task, counts) is Standing.EXCEEDED:
            stopped.add((run_id, task_id))
    return stopped
