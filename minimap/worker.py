"""The worker: claim ready instances, run each in a task process, record how every attempt ended."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import timedelta
from multiprocessing.connection import wait
from typing import Any

from minimap.defaults import HEARTBEAT_INTERVAL, PARALLELISM
from minimap.executor import Job, Outcome, TaskProcess
from minimap.states import TIState
from minimap.storage import Claimed, Completion, Store, utcnow

log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Worker:
    """Runs up to `slots` attempts at once, each in its own task process."""

    def __init__(self, store: Store, slots: int, parallelism: int | None = None, run_id: str | None = None) -> None:
        self.store = store
        self.slots = max(1, slots)
        self.parallelism = parallelism or PARALLELISM
        self.run_id = run_id  # claim only this run's instances (as `minimap run` does)
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.worker_id = f"{self.hostname}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.procs: list[TaskProcess] = []
        self._conf: dict[str, dict[str, Any]] = {}
        self._beat = 0.0

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.store.register_worker(self.worker_id, self.hostname, self.pid)
        self._beat = time.monotonic()
        log.info("worker %s started with %d slots", self.worker_id, self.slots)

    def heartbeat(self) -> None:
        if time.monotonic() - self._beat >= HEARTBEAT_INTERVAL:
            self.store.heartbeat(self.worker_id)
            self._beat = time.monotonic()

    @property
    def busy(self) -> int:
        return sum(1 for p in self.procs if p.busy)

    def shutdown(self, reason: str) -> None:
        """Stop every task process; hand attempts still under way back to the queue."""
        running = [p.job for p in self.procs if p.busy]
        for p in self.procs:
            if p.busy:
                p.kill()
            else:
                p.stop()
        self.procs = []
        if running:
            n = self.store.hand_back(self.worker_id, running, reason)
            log.warning("worker %s handed back %d unfinished attempts: %s", self.worker_id, n, reason)
        self.store.heartbeat(self.worker_id, state="stopped")

    # --- claim and dispatch ------------------------------------------------------------------

    def fill(self) -> int:
        """Claim as many instances as there are free slots and start them; how many started."""
        free = self.slots - self.busy
        if free <= 0:
            return 0
        claimed = self.store.claim(self.worker_id, self.hostname, self.pid, free, self.parallelism, self.run_id)
        for c in claimed:
            self._dispatch(c)
        return len(claimed)

    def _dispatch(self, c: Claimed) -> None:
        spec = self.store.spec(c.run_id)
        task = spec.tasks[c.task_id]
        if c.run_id not in self._conf:
            self._conf[c.run_id] = self.store.run(c.run_id).conf
        job = Job(
            run_id=c.run_id,
            dag_id=c.dag_id,
            dag_file=c.dag_file,
            task_id=c.task_id,
            map_index=c.map_index,
            try_number=c.try_number,
            args=c.args,
            conf=self._conf[c.run_id],
            params=spec.params,
            mapped_over=task.mapped_over and not task.mapped,  # a mapped task's list is its instances' results
            max_map_length=spec.max_map_length,
            map_index_template=task.map_index_template,
        )
        proc = next((p for p in self.procs if not p.busy), None)
        if proc is None:
            proc = TaskProcess()
            self.procs.append(proc)
        deadline = time.monotonic() + task.execution_timeout if task.execution_timeout else None
        log.debug("worker %s: running %s[%d] try %d", self.worker_id, c.task_id, c.map_index, c.try_number)
        proc.send(job, c, deadline)

    # --- collect -----------------------------------------------------------------------------

    def wait(self, timeout: float) -> int:
        """Wait up to `timeout` s for attempts to end; record those that did; how many were recorded."""
        self.heartbeat()
        busy = [p for p in self.procs if p.busy]
        if not busy:
            return 0
        deadlines = [p.deadline for p in busy if p.deadline is not None]
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        ready = set(wait([p.conn for p in busy] + [p.process.sentinel for p in busy], timeout))
        done: list[Completion] = []
        now = time.monotonic()
        for p in busy:
            claimed: Claimed = p.job
            if p.conn in ready or p.process.sentinel in ready:
                outcome = p.receive() if p.conn in ready else None
                if outcome is None:
                    done.append(self._failed(claimed, "TaskProcessDied", p.exit_description()))
                    self._replace(p)
                else:
                    done.append(self._completion(claimed, outcome))
            elif p.deadline is not None and now >= p.deadline:
                limit = self.store.spec(claimed.run_id).tasks[claimed.task_id].execution_timeout
                done.append(
                    self._failed(
                        claimed,
                        "Timeout",
                        f"execution_timeout of {limit:g}s exceeded; the task process was killed",
                    )
                )
                self._replace(p)
        if done:
            self.store.complete(self.worker_id, done)
        return len(done)

    def _replace(self, proc: TaskProcess) -> None:
        proc.kill()
        self.procs.remove(proc)

    def _completion(self, c: Claimed, o: Outcome) -> Completion:
        now = utcnow()
        if o.kind == "success":
            return Completion(
                c,
                TIState.SUCCESS,
                now,
                result=o.result,
                label=o.label,
                log=o.log,
                log_truncated=o.log_truncated,
            )
        if o.kind == "skipped":
            return Completion(
                c,
                TIState.SKIPPED,
                now,
                label=o.label,
                error_type=o.error_type,
                error_message=o.error_message,
                log=o.log,
                log_truncated=o.log_truncated,
            )
        retry = o.kind == "failed" and c.try_number < c.max_tries
        state, next_at = TIState.FAILED, None
        if retry:
            delay = self.store.spec(c.run_id).tasks[c.task_id].retry_delay_after(c.try_number)
            state, next_at = TIState.UP_FOR_RETRY, now + timedelta(seconds=delay)
        log.info(
            "%s[%d] try %d %s: %s: %s",
            c.task_id,
            c.map_index,
            c.try_number,
            state,
            o.error_type,
            o.error_message,
        )
        return Completion(
            c,
            state,
            now,
            label=o.label,
            error_type=o.error_type,
            error_message=o.error_message,
            log=o.log,
            log_truncated=o.log_truncated,
            next_retry_at=next_at,
        )

    def _failed(self, c: Claimed, error_type: str, message: str) -> Completion:
        log.warning("%s[%d] try %d: %s", c.task_id, c.map_index, c.try_number, message)
        return self._completion(c, Outcome("failed", error_type=error_type, error_message=message, log=message + "\n"))
