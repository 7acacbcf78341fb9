"""One scheduling pass over one run, on the connection that holds the run's row lock (see `Store.scheduling`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from minimap.snapshot import DagSpec
from minimap.states import RunState, TIState
from minimap.store import instances, runs
from minimap.store.rows import RunRow, utcnow

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

    def results(self, spec: DagSpec, task_ids: Iterable[str]) -> dict[str, Any]:
        """Upstream results as arguments see them: a mapped task's non-None results by map_index."""
        return instances.results(self.conn, self.run.run_id, spec, task_ids)

    def settle(self, task_id: str, state: TIState, error: str | None = None) -> None:
        """Give every waiting instance of `task_id` a final state without running it."""
        instances.settle(self.conn, self.run.run_id, task_id, state, error)

    def queue(self, task_id: str, args: str) -> None:
        """Queue the (unmapped) task's waiting instance with its resolved arguments."""
        instances.queue(self.conn, self.run.run_id, task_id, args)

    def expand(self, task_id: str, args: Sequence[str], max_tries: int) -> None:
        """One queued instance per element of `args` (see `instances.expand`)."""
        instances.expand(self.conn, self.run.run_id, self.run.dag_id, task_id, args, max_tries)

    def instance_states(self) -> list[tuple[str, int, TIState]]:
        return instances.instance_states(self.conn, self.run.run_id)

    def reset(self, keys: Sequence[tuple[str, int]], retries: dict[str, int]) -> None:
        """Send instances back to be scheduled with fresh tries; the run is running again."""
        instances.reset(self.conn, self.run.run_id, keys, retries)
        if keys:
            runs.set_state(self.conn, self.run.run_id, RunState.RUNNING, None)

    def finish(self, state: RunState) -> None:
        runs.set_state(self.conn, self.run.run_id, state, utcnow())
