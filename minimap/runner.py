"""Drive one run to its end in this process: a scheduler and a worker sharing one event loop."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from minimap.defaults import LEASE_TIMEOUT, POLL_INTERVAL
from minimap.scheduler import FINISHED_RUN, Scheduler
from minimap.states import RunState
from minimap.storage import Store
from minimap.worker import Worker, pid_alive

log = logging.getLogger(__name__)


def reclaim(store: Store, hostname: str) -> int:
    """Fail or retry attempts whose worker is gone; how many."""
    lost = store.reclaim_lost(LEASE_TIMEOUT, hostname, pid_alive)
    for line in lost:
        log.warning("reclaimed %s", line)
    return len(lost)


def drive(
    store: Store,
    run_id: str,
    slots: int,
    parallelism: int | None = None,
    on_progress: Callable[[], None] | None = None,
) -> RunState:
    """Schedule and execute `run_id` until it is finished; returns its final state.

    Attempts still under way when this is interrupted are handed back to the queue, so `resume`
    (or any scheduler and worker) can carry on from the database alone.
    """
    scheduler = Scheduler(store)
    worker = Worker(store, slots, parallelism, run_id=run_id)
    worker.start()
    reason = "run finished"
    try:
        changed, last_tick, next_reclaim = True, 0.0, 0.0
        while True:
            if time.monotonic() >= next_reclaim:
                changed |= reclaim(store, worker.hostname) > 0
                next_reclaim = time.monotonic() + min(LEASE_TIMEOUT / 3, 5.0)
            if changed or time.monotonic() - last_tick >= POLL_INTERVAL:
                state = scheduler.tick(run_id)
                last_tick = time.monotonic()
                if state in FINISHED_RUN and not worker.busy:
                    return state
            started = worker.fill()
            changed = worker.wait(0 if started and not worker.busy else POLL_INTERVAL) > 0
            if on_progress is not None:
                on_progress()
    except BaseException as e:
        reason = f"interrupted ({type(e).__name__})"
        raise
    finally:
        try:
            worker.shutdown(reason)
        except Exception as e:  # the database may be what failed; the lease timeout recovers the rest
            log.warning("worker %s could not shut down cleanly: %s", worker.worker_id, e)
