"""One scheduling pass over one run, on the connection that holds the run's row lock (see `Store.scheduling`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from minimap.rules.clearing import Reset
from minimap.rules.decisions import Counts
from minimap.rules.mapping import Existing, ExpansionPlan
from minimap.snapshot import DagSpec
from minimap.states import RunState, TIState
from minimap.store import instances, runs, wakeups
from minimap.store.rows import RunRow, utcnow

_COUNTED = [s for s in TIState if s not in (TIState.SUCCESS, TIState.QUEUED)]

if TYPE_CHECKING:
    from minimap.store.storage import Store


class RunTx:
    """What a scheduling pass may ask of the database; everything in it commits together."""

    def __init__(self, store: Store, conn: Connection, run: RunRow) -> None:
        self.store = store
        self.conn = conn
        self.run = run

    def counts(self) -> dict[str, dict[TIState, int]]:
        return instances.state_counts(self.conn, self.run.run_id)

    def decision_counts(self, successes_needed: Callable[[Counts], set[str]]) -> dict[str, dict[TIState, int]]:
        """What the scheduler's decisions read, bounded however large the run: counts of every state but success
        and queued, whether a task has a queued instance (counted as 1), and the successes of the tasks
        `successes_needed` names (minimap.rules.decisions proves these decide as the full counts would)."""
        run_id = self.run.run_id
        # one statement, one snapshot: a claim or a hand-back between two reads would hide an instance
        counts = instances.live_counts(self.conn, run_id, _COUNTED, self.store.spec(run_id, self.conn).tasks)
        needed = sorted(successes_needed(counts))
        if needed:
            for task_id, c in instances.counts_of(self.conn, run_id, [TIState.SUCCESS], needed).items():
                counts.setdefault(task_id, {}).update(c)
        return counts

    def results(self, spec: DagSpec, task_ids: Iterable[str]) -> dict[str, Any]:
        """Upstream results as arguments see them: a mapped task's non-None results by map_index."""
        return instances.results(self.conn, self.run.run_id, spec, task_ids)

    def settle(self, task_id: str, state: TIState, error: str | None = None) -> None:
        """Give every waiting instance of `task_id` a final state without running it."""
        instances.settle(self.conn, self.run.run_id, task_id, state, error)

    def abandon(self, task_id: str, reason: str) -> None:
        """The task failed past its tolerance: skip what has not started (saying why); pending retries fail."""
        instances.abandon(self.conn, self.run.run_id, task_id, reason)

    def queue(self, task_id: str, args: str) -> None:
        """Queue the (unmapped) task's waiting instance with its resolved arguments."""
        instances.queue(self.conn, self.run.run_id, task_id, args)

    def expansion_state(self, task_id: str) -> list[Existing]:
        """The task's instances as `minimap.rules.mapping.plan_expansion` needs them."""
        return instances.expansion_state(self.conn, self.run.run_id, task_id)

    def apply_expansion(self, task_id: str, plan: ExpansionPlan, args: Sequence[str], max_tries: int) -> None:
        """Carry out an expansion plan; `args` holds each map index's JSON arguments."""
        instances.apply_expansion(self.conn, self.run.run_id, self.run.dag_id, task_id, plan, args, max_tries)

    def instance_states(self) -> list[tuple[str, int, TIState, int]]:
        return instances.instance_states(self.conn, self.run.run_id)

    def reset(self, plan: Sequence[Reset]) -> None:
        """Carry out a clear: instances back to be scheduled with fresh tries; the run is running again."""
        instances.reset(self.conn, self.run.run_id, plan)
        if plan:
            runs.set_state(self.conn, self.run.run_id, RunState.RUNNING, None)

    def notify(self, channel: str) -> None:
        """Wake the processes listening on `channel` when this pass commits (store/wakeups.py)."""
        wakeups.notify(self.conn, channel)

    def finish(self, state: RunState) -> None:
        runs.set_state(self.conn, self.run.run_id, state, utcnow())
