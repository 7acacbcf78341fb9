"""The scheduler loop: apply `decisions.decide` to a run under its row lock. Never imports user code."""

from __future__ import annotations

import logging

from minimap.rules.decisions import Abandon, FinishRun, Prepare, Settle, decide
from minimap.rules.expansion import ExpansionError, call_kwargs, encode_args, expand
from minimap.rules.mapping import plan_expansion
from minimap.snapshot import DagSpec, TaskSpec
from minimap.states import FINISHED, RunState, TIState
from minimap.store.storage import RunTx, Store

log = logging.getLogger(__name__)

FINISHED_RUN = (RunState.SUCCESS, RunState.FAILED)
VACUUM_EVERY = 1000  # instances finished since the last vacuum, after which the scheduler vacuums (Postgres)
ANALYZE_AFTER = 1000  # instances inserted by one pass after which the planner's statistics are refreshed


class Scheduler:
    """Moves runs forward: starts queued runs, expands and queues ready tasks, settles, finishes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.expanded = 0
        self.finished_at_vacuum: dict[str, int] = {}
        self.finished = 0

    def tick(self, run_id: str) -> RunState:
        """One scheduling pass over `run_id`; returns the run's state afterwards."""
        spec = self.store.spec(run_id)
        self.expanded = 0
        try:
            state = self._pass(run_id, spec)
            if state is RunState.QUEUED:  # read under the run's lock: start it if max_active_runs allows
                self.store.start_runs(spec.dag_id, spec.max_active_runs)
                state = self._pass(run_id, spec)
            return state
        finally:
            if self.expanded >= ANALYZE_AFTER:
                self.store.analyze()
            if self.finished - self.finished_at_vacuum.setdefault(run_id, 0) >= VACUUM_EVERY:
                self.finished_at_vacuum[run_id] = self.finished
                self.store.vacuum()

    def _pass(self, run_id: str, spec: DagSpec) -> RunState:
        with self.store.scheduling(run_id) as tx:
            if tx.run.state is not RunState.RUNNING:
                return tx.run.state
            for _ in range(2 * len(spec.tasks) + 2):  # each pass settles at least one task, or stops
                counts = tx.counts()
                self.finished = sum(n for c in counts.values() for s, n in c.items() if s in FINISHED)
                actions = decide(spec, counts)
                if not actions:
                    break
                for action in actions:
                    if isinstance(action, Prepare):
                        self._prepare(tx, spec, spec.tasks[action.task_id])
                    elif isinstance(action, Abandon):
                        log.warning(
                            "run %s: task %s failed past its tolerance: %s", run_id, action.task_id, action.reason
                        )
                        tx.abandon(action.task_id, action.reason)
                    elif isinstance(action, Settle):
                        log.info("run %s: task %s is %s", run_id, action.task_id, action.state)
                        tx.settle(action.task_id, action.state)
                    elif isinstance(action, FinishRun):
                        log.info("run %s finished: %s", run_id, action.state)
                        tx.finish(action.state)
                        return action.state
            return RunState.RUNNING

    def _prepare(self, tx: RunTx, spec: DagSpec, task: TaskSpec) -> None:
        values = tx.results(spec, task.refs())
        try:
            if task.mapped:
                args = [encode_args(kw) for kw in expand(task, values)]
                log.info("run %s: task %s expands to %d instances", tx.run.run_id, task.task_id, len(args))
                plan = plan_expansion(tx.expansion_state(task.task_id), args)
                tx.apply_expansion(task.task_id, plan, args, task.retries + 1)
                self.expanded += len(args)
            else:
                tx.queue(task.task_id, encode_args(call_kwargs(task, values)))
        except ExpansionError as e:
            log.warning("run %s: task %s cannot be expanded: %s", tx.run.run_id, task.task_id, e)
            tx.settle(task.task_id, TIState.UPSTREAM_FAILED, error=f"cannot expand: {e}")
