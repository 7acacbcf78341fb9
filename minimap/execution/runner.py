"""The loops: drive one run in this process (`run`, `clear`, `resume`), or serve as a scheduler or a worker
daemon. All of them keep going through database outages, with backoff."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from minimap.defaults import LEASE_TIMEOUT, MAX_LOST_ATTEMPTS, PASS_SHARE, POLL_INTERVAL, STOP_GRACE
from minimap.exceptions import DatabaseError
from minimap.execution.registry import Registry
from minimap.execution.scheduler import FINISHED_RUN, Scheduler
from minimap.execution.worker import Worker, pid_alive
from minimap.rules.backoff import Backoff
from minimap.states import RunState
from minimap.store.storage import Store

log = logging.getLogger(__name__)

# Seconds between looks for lost workers: a process gone on this host is seen within this time (a look reads only
# the running instances, so it is cheap); a lease that expired elsewhere, within LEASE_TIMEOUT plus this.
RECLAIM_INTERVAL = min(LEASE_TIMEOUT / 3, 1.0)


class Stop:
    """Set by SIGTERM or SIGINT: the first asks for a graceful stop, a second one for an immediate stop."""

    def __init__(self) -> None:
        self.requested = False
        self.forced = False
        self.signal: signal.Signals | None = None  # the first one received
        self._previous: dict[int, Any] = {}

    def install(self) -> Stop:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        """Put back the handlers `install` replaced."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    @property
    def name(self) -> str:
        return self.signal.name if self.signal is not None else "a stop request"

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended (143 for SIGTERM)."""
        return 128 + int(self.signal) if self.signal is not None else 1

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.requested:
            self.forced = True
        else:
            self.signal = signal.Signals(signum)
        self.requested = True
        log.warning(
            "%s received: %s",
            signal.Signals(signum).name,
            "stopping now" if self.forced else "stopping (a second signal stops at once)",
        )


class Stopped(Exception):
    """`drive` was stopped by a signal before the run finished; its unfinished attempts were handed back."""

    def __init__(self, run_id: str, stop: Stop, handed_back: int) -> None:
        super().__init__(f"run {run_id} stopped by {stop.name}")
        self.run_id = run_id
        self.stop = stop
        self.handed_back = handed_back


def let_finish(worker: Worker, stop: Stop, grace: float) -> None:
    """Claim nothing more; let running attempts end and be recorded for up to `grace` s (a second signal
    cuts it short)."""
    if stop.forced or not (worker.busy or worker.unrecorded):
        return
    log.warning("worker %s: letting %d running attempts finish (up to %gs)", worker.worker_id, worker.busy, grace)
    deadline = time.monotonic() + grace
    while (worker.busy or worker.unrecorded) and time.monotonic() < deadline and not stop.forced:
        worker.step(min(0.2, max(0.0, deadline - time.monotonic())), claim=False)


class SchedulerLoop:
    """Scheduling passes and lost-worker reclaims, tolerant of database outages."""

    def __init__(self, store: Store, hostname: str) -> None:
        self.store = store
        self.hostname = hostname
        self.scheduler = Scheduler(store)
        self.db = Backoff("scheduler: database")
        self.next_reclaim = 0.0
        self.next_pass: dict[str, float] = {}  # run_id -> when a pass that is not urgent may come

    def tick(self, run_id: str, urgent: bool = True) -> RunState | None:
        """One pass over `run_id` (after a reclaim when due); None while the database is away, or when the pass
        is not `urgent` and the last one over this run was too recent (see PASS_SHARE)."""
        if not self.db.ready:
            return None
        try:
            if time.monotonic() >= self.next_reclaim:
                for line in self.store.reclaim_lost(LEASE_TIMEOUT, self.hostname, pid_alive, MAX_LOST_ATTEMPTS):
                    log.warning("reclaimed %s", line)
                self.next_reclaim = time.monotonic() + RECLAIM_INTERVAL
            began = time.monotonic()
            if not urgent and began < self.next_pass.get(run_id, 0.0):
                return None
            state = self.scheduler.tick(run_id)
            self.next_pass[run_id] = time.monotonic() + PASS_SHARE * (time.monotonic() - began)
        except DatabaseError as e:
            if not e.transient:
                raise
            self.db.failed(e)
            return None
        self.db.succeeded()
        return state

    def unfinished(self) -> list[str]:
        try:
            runs = [r.run_id for r in self.store.unfinished_runs()] if self.db.ready else []
        except DatabaseError as e:
            if not e.transient:
                raise
            self.db.failed(e)
            return []
        return runs


def explain_queued(store: Store, run_id: str) -> None:
    """Say why a run waits for max_active_runs, and what would let it start."""
    ahead = store.runs_ahead(run_id)
    if not ahead:
        return
    limit = store.spec(run_id).max_active_runs
    names = ", ".join(f"{r.run_id} ({r.state})" for r in ahead[:3]) + (" ..." if len(ahead) > 3 else "")
    log.warning(
        "run %s waits: DAG %s allows max_active_runs=%d and these come first: %s. Let `minimap scheduler` and "
        "`minimap worker` run them, or finish one with `minimap resume --run-id %s`.",
        run_id, ahead[0].dag_id, limit, names, ahead[0].run_id,
    )  # fmt: skip


def drive(
    store: Store,
    run_id: str,
    slots: int,
    parallelism: int | None = None,
    on_progress: Callable[[], None] | None = None,
    stop: Stop | None = None,
    grace: float = STOP_GRACE,
) -> RunState:
    """Schedule and execute `run_id` until it is finished; returns its final state.

    Attempts still under way when this is interrupted are handed back to the queue, so `resume`
    (or any scheduler and worker) can carry on from the database alone. When `stop` is requested, nothing
    more is claimed, running attempts get `grace` seconds to end, the rest is handed back and Stopped raised.
    """
    worker = Worker(store, slots, parallelism, run_id=run_id)
    loop = SchedulerLoop(store, worker.hostname)
    worker.start()
    reason = "run finished"
    shut = False
    try:
        changed, last_tick, told = True, 0.0, 0.0
        while stop is None or not stop.requested:
            if changed or time.monotonic() - last_tick >= POLL_INTERVAL:
                state = loop.tick(run_id, urgent=changed)
                last_tick = time.monotonic()
                if state is RunState.QUEUED and time.monotonic() - told >= 30:
                    explain_queued(store, run_id)
                    told = time.monotonic()
                if state in FINISHED_RUN and not worker.busy and not worker.unrecorded:
                    assert state is not None
                    return state
                worker.nudge()
            # A pass after completions matters when they may make new work ready and there is room for it; while
            # the queue keeps every slot busy, the poll interval is enough (a pass costs a scan of the run).
            changed = worker.step(POLL_INTERVAL) > 0 and worker.starved
            if on_progress is not None:
                try:
                    on_progress()
                except DatabaseError as e:
                    if not e.transient:
                        raise
                    # progress is best effort; the loops above wait the outage out
        assert stop is not None
        let_finish(worker, stop, grace)
        state = loop.tick(run_id)  # what ended in the grace period may have finished the run
        if state in FINISHED_RUN and not worker.busy and not worker.unrecorded:
            assert state is not None
            return state
        reason = f"minimap on {worker.hostname}:{worker.pid} was stopped by {stop.name} before the attempt finished"
        shut = True
        raise Stopped(run_id, stop, _shutdown(worker, reason))
    except BaseException as e:
        reason = f"interrupted ({type(e).__name__})"
        raise
    finally:
        if not shut:
            _shutdown(worker, reason)


def _shutdown(worker: Worker, reason: str) -> int:
    """Stop the worker, handing back its unfinished attempts: how many were handed back."""
    try:
        return worker.shutdown(reason)
    except DatabaseError as e:  # the lease timeout recovers what could not be handed back
        log.warning("worker %s could not hand back its attempts: %s; the lease timeout will", worker.worker_id, e)
        return 0


def serve_scheduler(store: Store, stop: Stop, hostname: str, registry: Registry | None = None) -> None:
    """Schedule every unfinished run until `stop` is requested; with a registry, also keep its DAG files
    recorded and create their due scheduled runs."""
    loop = SchedulerLoop(store, hostname)
    log.info("scheduler started on %s", store.url)
    try:
        while not stop.requested:
            if registry is not None and loop.db.ready:
                try:
                    registry.step()
                except DatabaseError as e:
                    loop.db.failed(e)
            for run_id in loop.unfinished():
                if stop.requested:
                    break
                loop.tick(run_id, urgent=False)
            time.sleep(POLL_INTERVAL)
    finally:
        if registry is not None:
            registry.close()
    log.info("scheduler stopped")


def serve_worker(store: Store, stop: Stop, concurrency: int, grace: float, parallelism: int | None = None) -> None:
    """Claim and run instances of any run until `stop`; then finish within `grace` s and hand back the rest."""
    worker = Worker(store, concurrency, parallelism)
    worker.start()
    log.info("worker %s started with %d slots on %s", worker.worker_id, concurrency, store.url)
    why: str | None = None  # what stopped the worker, when it was not the stop request (read once it has come)
    try:
        while not stop.requested:
            worker.step(POLL_INTERVAL)
        let_finish(worker, stop, grace)
    except BaseException as e:  # a database that refuses us: stop the task processes and hand back what we can
        why = type(e).__name__
        raise
    finally:
        _shutdown(
            worker, f"worker {worker.hostname}:{worker.pid} stopped ({why or stop.name}) before the attempt finished"
        )
    log.info("worker %s stopped", worker.worker_id)
