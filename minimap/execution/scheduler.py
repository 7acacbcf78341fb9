"""The scheduler loop: apply `decisions.decide` to a run under its row lock. Never imports user code."""

from __future__ import annotations

import logging
from dataclasses import replace

from minimap.rules import lanes
from minimap.rules.decisions import (
    Abandon,
    AbandonLanes,
    Counts,
    FinishRun,
    Prepare,
    Settle,
    decide,
    successes_needed,
)
from minimap.rules.expansion import LANE, ExpansionError, Lazy, call_kwargs, encode_args, iter_expand, lazy_refs
from minimap.rules.expansion import lanes as lane_arguments
from minimap.rules.mapping import plan_expansion
from minimap.rules.tolerance import Tallies
from minimap.snapshot import DagSpec, GroupSpec, TaskSpec
from minimap.states import RunState, TIState
from minimap.store.lanes import LaneTx
from minimap.store.storage import RunTx, Store
from minimap.store.wakeups import WORK

log = logging.getLogger(__name__)

FINISHED_RUN = (RunState.SUCCESS, RunState.FAILED)
VACUUM_EVERY = 1000  # attempts recorded since the last vacuum, after which the scheduler vacuums (Postgres)
ANALYZE_AFTER = 1000  # instances inserted by one pass after which the planner's statistics are refreshed


class Scheduler:
    """Moves runs forward: starts queued runs, expands and queues ready tasks, settles, finishes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.expanded = 0
        self.recorded_at_vacuum = 0

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
            # Ends recorded by this process's worker (`minimap run`): a scheduler of its own relies on autovacuum,
            # tuned for task_instance by migration 0006.
            if self.store.recorded - self.recorded_at_vacuum >= VACUUM_EVERY:
                self.recorded_at_vacuum = self.store.recorded
                self.store.vacuum()

    def _pass(self, run_id: str, spec: DagSpec) -> RunState:
        with self.store.scheduling(run_id) as tx:
            if tx.run.state is not RunState.RUNNING:
                return tx.run.state
            lane_tx = LaneTx(tx.conn, run_id, tx.run.dag_id)
            # Bounded counts (no successes, queued as "at least one") decide as the full ones for plain tasks;
            # lanes and failure tolerances read every state's count, so those DAGs still count the run.
            bounded = not spec.groups and all(t.tolerated_failures is None for t in spec.tasks.values())
            notified = False
            for _ in range(2 * len(spec.tasks) + 2):  # each pass settles at least one task, or stops
                counts = tx.decision_counts(lambda p: successes_needed(spec, p)) if bounded else tx.counts()
                unexpanded = lane_tx.unexpanded(spec) if spec.groups else frozenset()
                tallies = lane_tx.tallies(spec, counts) if spec.groups else {}  # failed lanes, where tolerated
                actions = decide(spec, counts, unexpanded, tallies)
                moved = self._lanes(tx, lane_tx, spec, counts, unexpanded, tallies)
                if not actions and not moved:
                    break
                if not notified and (moved or any(isinstance(a, (Prepare, lanes.ExpandGroup)) for a in actions)):
                    tx.notify(WORK)  # one notification per pass, sent when the pass commits
                    notified = True
                for action in actions:
                    if isinstance(action, lanes.ExpandGroup):
                        self._make_lanes(tx, lane_tx, spec, spec.groups[action.group_id])
                    elif isinstance(action, lanes.SettleGroup):
                        log.info("run %s: task group %s is %s", run_id, action.group_id, action.state)
                        lane_tx.settle_placeholders(spec.groups[action.group_id], action.state)
                    elif isinstance(action, Prepare):
                        self._prepare(tx, spec, spec.tasks[action.task_id])
                    elif isinstance(action, Abandon):
                        log.warning(
                            "run %s: task %s failed past its tolerance: %s", run_id, action.task_id, action.reason
                        )
                        tx.abandon(action.task_id, action.reason)
                    elif isinstance(action, AbandonLanes):
                        log.warning("run %s: group %s past its tolerance: %s", run_id, action.group_id, action.reason)
                        lane_tx.abandon(spec.groups[action.group_id], action.reason)
                    elif isinstance(action, Settle):
                        log.info("run %s: task %s is %s", run_id, action.task_id, action.state)
                        tx.settle(action.task_id, action.state)
                    elif isinstance(action, FinishRun):
                        log.info("run %s finished: %s", run_id, action.state)
                        tx.finish(action.state)
                        return action.state
                if self.expanded >= ANALYZE_AFTER and any(isinstance(a, lanes.ExpandGroup) for a in actions):
                    # Judge the new lanes in the next pass, once ANALYZE (in `tick`) has seen them: without
                    # statistics Postgres plans the lane queries as nested scans (16 s for 3,000 lanes, not 20 ms).
                    break
            return RunState.RUNNING

    def _prepare(self, tx: RunTx, spec: DagSpec, task: TaskSpec) -> None:
        lazy = lazy_refs(task, lambda t: spec.tasks[t].mapped)
        if lazy:  # a mapped task's whole output is not read here: the task reads it, page by page
            task = replace(task, kwargs={k: e for k, e in task.kwargs.items() if k not in lazy})
        values = tx.results(spec, task.refs())
        try:
            if task.mapped:
                args = [encode_args(kw) for kw in iter_expand(task, values)]
                log.info("run %s: task %s expands to %d instances", tx.run.run_id, task.task_id, len(args))
                plan = plan_expansion(tx.expansion_state(task.task_id), args)
                tx.apply_expansion(task.task_id, plan, args, task.retries + 1)
                self.expanded += len(args)
            else:
                kwargs = {**call_kwargs(task, values), **{k: Lazy(t) for k, t in lazy.items()}}
                tx.queue(task.task_id, encode_args(kwargs))
        except ExpansionError as e:
            log.warning("run %s: task %s cannot be expanded: %s", tx.run.run_id, task.task_id, e)
            tx.settle(task.task_id, TIState.UPSTREAM_FAILED, error=f"cannot expand: {e}")

    # --- mapped task groups: lanes --------------------------------------------------------------------

    def _make_lanes(self, tx: RunTx, lane_tx: LaneTx, spec: DagSpec, group: GroupSpec) -> None:
        values = tx.results(spec, group.refs())
        try:
            made = lane_arguments(group.expand, group.expand_kwargs, values)
        except ExpansionError as e:
            log.warning("run %s: task group %s cannot be expanded: %s", tx.run.run_id, group.group_id, e)
            lane_tx.settle_placeholders(group, TIState.UPSTREAM_FAILED, error=f"cannot expand: {e}")
            return
        log.info("run %s: task group %s expands to %d lanes", tx.run.run_id, group.group_id, len(made))
        lane_tx.make_lanes(spec, group, made)
        self.expanded += len(made) * len(group.tasks)

    def _lanes(
        self, tx: RunTx, lane_tx: LaneTx, spec: DagSpec, counts: Counts, unexpanded: frozenset[str], tallies: Tallies
    ) -> bool:
        """Judge the waiting steps of every expanded group's lanes; whether anything moved."""
        moved = False
        for gid, group in spec.groups.items():
            if not group.mapped or gid in unexpanded:
                continue
            if not any(counts.get(t, {}).get(TIState.SCHEDULED) for t in group.tasks):
                continue
            found = lane_tx.facts(spec, group)
            for action in lanes.lane_actions(spec, group, counts, found.lanes, found.in_flight, tallies):
                moved = True
                if isinstance(action, lanes.SettleLanes):
                    lane_tx.settle(action.task_id, action.indexes, action.state)
                else:
                    self._queue_lanes(tx, lane_tx, spec, spec.tasks[action.task_id], action.indexes)
        return moved

    def _queue_lanes(self, tx: RunTx, lane_tx: LaneTx, spec: DagSpec, task: TaskSpec, indexes: tuple[int, ...]) -> None:
        refs = task.refs()
        inside = {r for r in refs if spec.in_lane(r, task.task_id)}
        whole = tx.results(spec, refs - inside)
        lane_args, results = lane_tx.inputs(task.task_id, inside, indexes)
        args: dict[int, str] = {}
        failed: dict[str, list[int]] = {}
        for i in indexes:
            lane = lane_args.get(i, {})
            try:
                args[i] = encode_args(call_kwargs(task, {**whole, **results[i], LANE: lane}), lane=lane)
            except ExpansionError as e:
                failed.setdefault(str(e), []).append(i)
        lane_tx.queue(task.task_id, args)
        for error, bad in failed.items():
            log.warning("run %s: %s%s cannot be built: %s", tx.run.run_id, task.task_id, bad, error)
            lane_tx.settle(task.task_id, bad, TIState.UPSTREAM_FAILED, error=f"cannot build its arguments: {error}")
