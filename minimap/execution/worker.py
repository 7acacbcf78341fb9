"""The worker: claim ready instances, run each in a task process, record how every attempt ended."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import datetime
from multiprocessing.connection import wait
from typing import Any

from minimap.defaults import HEARTBEAT_INTERVAL, PARALLELISM, POLL_INTERVAL
from minimap.exceptions import DatabaseError
from minimap.execution.executor import Job, Outcome, TaskProcess
from minimap.rules import attempts
from minimap.rules.backoff import Backoff
from minimap.states import TIState
from minimap.store import wakeups
from minimap.store.rows import Claimed, Completion, utcnow
from minimap.store.storage import Store
from minimap.store.wakeups import Listener

log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): existence is all we can know


class Worker:
    """Runs up to `slots` attempts at once, each in its own task process."""

    def __init__(
        self,
        store: Store,
        slots: int,
        parallelism: int | None = None,
        run_id: str | None = None,
        listener: Listener | None = None,  # a daemon's: woken by schedulers, and wakes them when the queue runs dry
    ) -> None:
        self.store = store
        self.slots = max(1, slots)
        self.parallelism = parallelism or PARALLELISM
        self.run_id = run_id  # claim only this run's instances (as `minimap run` does)
        self.listener = listener
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.worker_id = f"{self.hostname}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.procs: list[TaskProcess] = []
        self._conf: dict[str, dict[str, Any]] = {}
        # each run's (logical_date, data_interval_start, data_interval_end); a manual run's: its creation time
        self._logical: dict[str, tuple[datetime, datetime, datetime]] = {}
        self._run_type: dict[str, str] = {}
        self._db_url = store.engine.url.render_as_string(hide_password=False)  # for ti.xcom_pull in task processes
        self._beat = 0.0
        self.pending: list[Completion] = []  # ended attempts not yet recorded (the database may be away)
        self.starved = True  # the last claim found fewer ready instances than free slots
        self._next_claim = 0.0
        self.db = Backoff(f"worker {self.worker_id}: database")

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.store.register_worker(self.worker_id, self.hostname, self.pid)
        self._beat = time.monotonic()
        log.info("worker %s started with %d slots", self.worker_id, self.slots)

    @property
    def busy(self) -> int:
        return sum(1 for p in self.procs if p.busy)

    def shutdown(self, reason: str) -> int:
        """Stop every task process; hand attempts still under way back to the queue: how many were.

        The processes go first, whatever the database does next: a task process ignores SIGTERM, so one left
        behind would keep this process from exiting (multiprocessing joins it at exit).
        """
        running = [p.job for p in self.procs if p.busy]
        for p in self.procs:
            if p.busy:
                p.kill()
            else:
                p.stop()
        self.procs = []
        if self.pending:
            self.store.complete(self.worker_id, self.pending)
            self.pending = []
        n = self.store.hand_back(self.worker_id, running, reason) if running else 0
        if n:
            log.info("worker %s handed back %d unfinished attempts: %s", self.worker_id, n, reason)
        self.store.heartbeat(self.worker_id, state="stopped")
        if self.listener is not None:
            self.listener.close()
        return n

    # --- one round ---------------------------------------------------------------------------

    def step(self, timeout: float, claim: bool = True) -> int:
        """Record what ended and claim into the free slots (one transaction), then wait up to `timeout` s for
        attempts to end and record those at once (with the next claims); how many ended attempts were recorded.

        The longer an exchange takes, the more attempts end meanwhile and go into the next one: batches grow
        with the load. A database error is absorbed: outcomes stay pending until the database answers again.
        """
        recorded = self._guarded(lambda: self._exchange(claim)) if self.db.ready else None
        # Recorded something and found nothing to claim: the scheduler may have work now, so don't wait here.
        ended = self.collect(0.0 if recorded and self.starved else timeout)
        if ended and self.db.ready:
            # Record at once, with the claims into the freed slots: an outcome held only in memory is what a
            # kill loses (and runs again), and the caller may next spend a while in a scheduling pass.
            recorded = (recorded or 0) + (self._guarded(lambda: self._exchange(claim)) or 0)
        return recorded or 0

    def _exchange(self, claim: bool) -> int:
        now = time.monotonic()
        free = self.slots - self.busy
        # Claim when the poll interval since a starved claim has passed -- or at once when attempts ended: their
        # slots may be what a cap was waiting for (a starved claim can mean "capped", not "nothing queued").
        want = free if claim and free > 0 and (now >= self._next_claim or self.pending) else 0
        heartbeat = now - self._beat >= HEARTBEAT_INTERVAL
        if not (self.pending or want or heartbeat):
            return 0
        done = self.pending
        # a daemon's ended attempts wake the schedulers when this claim then finds the queue dry (the store decides)
        wake = wakeups.SCHEDULE if self.listener is not None and done else None
        _, claimed = self.store.exchange(
            self.worker_id, self.hostname, self.pid, done, want, self.parallelism, self.run_id, notify=wake
        )
        self.pending = []
        if heartbeat:
            self.store.heartbeat(self.worker_id)
            self._beat = now
        for c in claimed:
            self._dispatch(c)
        if want:
            self.starved = len(claimed) < want  # nothing more is ready: the scheduler has work to do
            if self.starved:
                self._next_claim = now + POLL_INTERVAL
        return len(done)

    def nudge(self) -> None:
        """New work may be ready (the scheduler just acted): claim at the next chance."""
        self._next_claim = 0.0

    @property
    def unrecorded(self) -> bool:
        """Whether some ended attempt is not recorded yet."""
        return bool(self.pending)

    def _guarded(self, fn: Any) -> Any:
        try:
            result = fn()
        except DatabaseError as e:
            if not e.transient:
                raise
            self.db.failed(e)
            return None
        if self.db.succeeded():
            self._reconcile()
        return result

    def _reconcile(self) -> None:
        """After an outage: hand back what the database says this worker holds but it is not running
        (a claim whose commit was never confirmed), so nothing stays `running` for ever."""
        mine = {p.job.key for p in self.procs if p.busy} | {c.claimed.key for c in self.pending}
        stray = [c for c in self.store.held_by(self.worker_id) if c.key not in mine]
        if stray:
            self.store.hand_back(self.worker_id, stray, "claimed while the database connection failed; handed back")

    # --- dispatch and collect ----------------------------------------------------------------

    def _dispatch(self, c: Claimed) -> None:
        spec = self.store.spec(c.run_id)
        task = spec.tasks[c.task_id]
        if c.run_id not in self._conf:
            run = self.store.run(c.run_id)
            self._conf[c.run_id], self._logical[c.run_id] = run.conf, run.logical
            self._run_type[c.run_id] = run.run_type
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
            logical_date=self._logical[c.run_id][0],
            data_interval=self._logical[c.run_id][1:],
            run_type=self._run_type[c.run_id],
            db_url=self._db_url,
        )
        proc = next((p for p in self.procs if not p.busy), None)
        if proc is None:
            proc = TaskProcess()
            self.procs.append(proc)
        deadline = time.monotonic() + task.execution_timeout if task.execution_timeout else None
        log.debug("worker %s: running %s[%d] try %d", self.worker_id, c.task_id, c.map_index, c.try_number)
        proc.send(job, c, deadline)

    # --- collect and record ------------------------------------------------------------------

    def collect(self, timeout: float) -> int:
        """Wait up to `timeout` s for attempts to end; keep their outcomes as pending; how many ended."""
        busy = [p for p in self.procs if p.busy]
        if self.pending and self.db.ready:
            timeout = 0.0  # something to record: go round at once
        listener = self.listener
        if not busy:
            if timeout and listener is not None:
                if listener.wait(timeout):
                    self.nudge()  # a scheduler queued work
            elif timeout:
                time.sleep(timeout)
            return 0
        deadlines = [p.deadline for p in busy if p.deadline is not None]
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        waited: list[Any] = [p.conn for p in busy] + [p.process.sentinel for p in busy]
        fd = listener.fileno() if listener is not None else -1
        ready = set(wait(waited + ([fd] if fd >= 0 else []), timeout))
        if fd in ready and listener is not None and listener.drain():
            self.nudge()  # a scheduler queued work
        now = time.monotonic()
        before = len(self.pending)
        for p in busy:
            claimed: Claimed = p.job
            if p.conn in ready or p.process.sentinel in ready:
                outcome = p.receive() if p.conn in ready else None
                if outcome is None:
                    self.pending.append(self._failed(claimed, "TaskProcessDied", p.exit_description()))
                    self._replace(p)
                else:
                    self.pending.append(self._completion(claimed, outcome))
            elif p.deadline is not None and now >= p.deadline:
                limit = self.store.spec(claimed.run_id).tasks[claimed.task_id].execution_timeout or 0
                message = f"execution_timeout of {limit:g}s exceeded; the task process was killed"
                self.pending.append(self._failed(claimed, "Timeout", message))
                self._replace(p)
        return len(self.pending) - before

    def _replace(self, proc: TaskProcess) -> None:
        proc.kill()
        self.procs.remove(proc)

    def _completion(self, c: Claimed, o: Outcome) -> Completion:
        now = utcnow()
        delay = self.store.spec(c.run_id).tasks[c.task_id].retry_delay_after(c.try_number)
        ending = attempts.finished(o.kind, c.try_number, c.max_tries, now, delay)
        state, next_at = ending.state, ending.next_retry_at
        if state in (TIState.FAILED, TIState.UP_FOR_RETRY):
            log.info(
                "%s[%d] try %d %s: %s: %s", c.task_id, c.map_index, c.try_number, state, o.error_type, o.error_message
            )
        return Completion(
            c, state, now, result=o.result, label=o.label, error_type=o.error_type, error_message=o.error_message,
            log=o.log, log_truncated=o.log_truncated, next_retry_at=next_at,
        )  # fmt: skip

    def _failed(self, c: Claimed, error_type: str, message: str) -> Completion:
        log.warning("%s[%d] try %d: %s", c.task_id, c.map_index, c.try_number, message)
        return self._completion(c, Outcome("failed", error_type=error_type, error_message=message, log=message + "\n"))
