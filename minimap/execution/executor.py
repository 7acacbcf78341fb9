"""Task processes: each runs one attempt at a time in its own OS process, so that a timeout or a
crash (os._exit, a segfault) ends that attempt only, never the worker that supervises it."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import multiprocessing
import signal
import traceback
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from minimap.authoring.context import TaskInstanceInfo, build_context, idempotency_key, reset_context, set_context
from minimap.defaults import LOG_LIMIT
from minimap.exceptions import FailNow, SkipTask


@dataclass(frozen=True)
class Job:
    """One attempt to run: everything the task process needs, none of it a database handle."""

    run_id: str
    dag_id: str
    dag_file: str
    task_id: str
    map_index: int
    try_number: int
    args: str | None
    conf: dict[str, Any]
    params: dict[str, Any]
    mapped_over: bool
    max_map_length: int
    map_index_template: str | None
    logical_date: datetime | None = None  # the run's; its creation time for a triggered run
    data_interval: tuple[datetime, datetime] | None = None  # (start, end); a triggered run's: logical_date twice
    run_type: str = "manual"  # manual / scheduled / backfill
    db_url: str | None = field(default=None, repr=False)  # where `ti.xcom_pull` reads results (has the password)


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended, as the task process reports it."""

    kind: str  # success | skipped | failed | fail_now
    result: str | None = None  # JSON
    label: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    log: str = ""
    log_truncated: bool = False


class _Capture(io.TextIOBase):
    """Text sink that keeps the head and the tail of what was written, up to `limit` characters."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head: list[str] = []
        self.head_size = 0
        self.tail: deque[str] = deque()
        self.tail_size = 0
        self.cut = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        n = len(s)
        if self.head_size < self.half:
            take = s[: self.half - self.head_size]
            self.head.append(take)
            self.head_size += len(take)
            s = s[len(take) :]
        if s:
            self.tail.append(s)
            self.tail_size += len(s)
            while self.tail_size > self.half and self.tail:
                extra = self.tail_size - self.half
                first = self.tail[0]
                if len(first) <= extra:
                    self.tail.popleft()
                    self.tail_size -= len(first)
                    self.cut += len(first)
                else:
                    self.tail[0] = first[extra:]
                    self.tail_size -= extra
                    self.cut += extra
        return n

    def text(self) -> tuple[str, bool]:
        middle = f"\n[... {self.cut} characters cut: minimap keeps {2 * self.half} per try ...]\n" if self.cut else ""
        return "".join(self.head) + middle + "".join(self.tail), bool(self.cut)


def _where(job: Job) -> str:
    return f"task {job.task_id}" + (f"[{job.map_index}]" if job.map_index >= 0 else "")


def _lazy_as_list(value: Any) -> Any:
    """A lazy sequence of upstream results, returned as it was received, is stored as the list it stands for."""
    from minimap.store.xcom import LazyResults

    if isinstance(value, LazyResults):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _check_result(job: Job, value: Any) -> str | None:
    """`value` as JSON; raises TypeError/ValueError naming the task, index and type when it cannot be."""
    if type(value).__name__ == "LazyResults":
        value = _lazy_as_list(value)
    if job.mapped_over:
        if value is None or not isinstance(value, (list, tuple, dict)):
            raise TypeError(
                f"{_where(job)} returned {'None' if value is None else 'a ' + type(value).__name__}, but a "
                "downstream task maps over it: return a list or a dict"
            )
        if len(value) > job.max_map_length:
            raise ValueError(
                f"{_where(job)} returned {len(value)} items to map over, more than max_map_length="
                f"{job.max_map_length} (raise it with DAG(max_map_length=...) or MINIMAP_MAX_MAP_LENGTH)"
            )
    if value is None:
        return None
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"), default=_lazy_as_list)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{_where(job)} returned a {type(value).__name__} that cannot be stored as JSON ({e}); return "
            "JSON values (str, number, bool, None, list, dict)"
        ) from None


def _render_label(template: str | None, values: dict[str, Any]) -> str | None:
    if not template:
        return None
    from jinja2.sandbox import SandboxedEnvironment

    try:
        return SandboxedEnvironment().from_string(template).render(**values) or None
    except Exception as e:  # a bad template must not fail the task
        logging.getLogger(__name__).warning("map_index_template %r failed: %s", template, e)
        return None


def _reader(job: Job) -> Any:
    """How `ti.xcom_pull` reads this run's results: from the database the worker uses."""
    url = job.db_url
    if url is None:
        return None

    def read(task_id: str, map_indexes: list[int] | None) -> list[tuple[int, Any]]:
        from minimap.store.xcom import successful_results

        return successful_results(url, job.run_id, task_id, map_indexes)

    return read


_opened: list[Any] = []  # lazy sequences handed to the running attempt; closed when it ends


def _lazy(job: Job) -> Any:
    """How a mapped task's whole output reaches this attempt: a sequence that reads it page by page."""
    url = job.db_url
    if url is None:
        return None

    def sequence(task_id: str) -> Any:
        from minimap.store.xcom import LazyResults

        _opened.append(LazyResults(url, job.run_id, task_id))
        return _opened[-1]

    return sequence


def _failed_upstream(job: Job, dag: Any, task: Any) -> dict[str, list[int]]:
    """For each upstream task with tolerated_failures, the map indexes that failed (its results leave them out);
    for an upstream step of a mapped group with tolerated_failures (outside this task's lane), the group's failed
    lanes (the step's results leave them out too)."""
    tolerant = sorted(u for u in task.upstream_ids if dag.tasks[u].settings.get("tolerated_failures") is not None)
    own = task.group.lane_group() if task.group is not None else None
    lanes: dict[str, list[str]] = {}  # upstream step -> the task ids of its tolerant group
    for u in sorted(task.upstream_ids):
        up = dag.tasks[u]
        group = up.group.lane_group() if up.group is not None else None
        if group is not None and group is not own and group.tolerated_failures is not None:
            lanes[u] = [t.task_id for t in group.tasks]
    if not (tolerant or lanes) or job.db_url is None:
        return {}
    from minimap.store.xcom import failed_indexes, failed_lanes

    found = failed_indexes(job.db_url, job.run_id, tolerant) if tolerant else {}
    for u, steps in lanes.items():
        found[u] = failed_lanes(job.db_url, job.run_id, steps)
    return found


def _check_outputs(job: Job, value: Any) -> None:
    """A multiple_outputs result is a dict; a downstream task may map over any of its values."""
    if not isinstance(value, dict):
        raise TypeError(f"{_where(job)} has multiple_outputs=True and returned a {type(value).__name__}; return a dict")
    for key, item in value.items():
        if job.mapped_over and isinstance(item, (list, tuple, dict)) and len(item) > job.max_map_length:
            raise ValueError(
                f"{_where(job)} returned {len(item)} items under {key!r} to map over, more than max_map_length="
                f"{job.max_map_length} (raise it with DAG(max_map_length=...) or MINIMAP_MAX_MAP_LENGTH)"
            )


def _indexed(task: Any) -> bool:
    """Whether a task's results are pulled as a list: mapped, or a step of a mapped group's lanes."""
    return bool(task.mapped or (task.group is not None and task.group.lane_group() is not None))


def _run_task(job: Job, context: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    """Load the DAG, fill in the context and `kwargs` (the label needs them, even if the attempt fails),
    and run the attempt: its return value."""
    from minimap.authoring.loader import load_dag
    from minimap.authoring.templating import environment, render
    from minimap.rules.expansion import decode_args

    dag = load_dag(job.dag_file, job.dag_id, announce=False)
    task = dag.get_task(job.task_id)
    lanes = task.group.lane_group() if task.group is not None else None
    ti = TaskInstanceInfo(
        job.dag_id, job.task_id, job.run_id, job.map_index, job.try_number, _reader(job),
        known_tasks=frozenset(dag.tasks), mapped_tasks=frozenset(t for t, v in dag.tasks.items() if _indexed(v)),
        lane_tasks=frozenset(t.task_id for t in lanes.tasks) if lanes is not None else frozenset(),
    )  # fmt: skip
    context.update(build_context(dag, task, ti, job.conf, job.logical_date, job.data_interval, job.run_type))
    context["failed_map_indexes"] = _failed_upstream(job, dag, task)
    if task.templates_dict is not None:
        context["templates_dict"] = render(task.templates_dict, context, environment(dag))
    kwargs.update(decode_args(job.args, dag.map_fns, _lazy(job)))
    value = task.runner(dict(kwargs), context)
    if task.multiple_outputs:
        _check_outputs(job, value)
    return value if task.do_xcom_push else None


def execute(job: Job) -> Outcome:
    """Run one attempt in this process and report how it ended."""
    capture = _Capture(LOG_LIMIT)
    context: dict[str, Any] = {
        "dag_id": job.dag_id,
        "run_id": job.run_id,
        "task_id": job.task_id,
        "map_index": job.map_index,
        "try_number": job.try_number,
        "conf": job.conf,
        "params": {**job.params, **job.conf},
        "idempotency_key": idempotency_key(job.dag_id, job.run_id, job.task_id, job.map_index),
    }
    kwargs: dict[str, Any] = {}
    handler = logging.StreamHandler(capture)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(min(old_level, logging.INFO))
    token = set_context(context)
    kind, result, error_type, error_message = "success", None, None, None
    try:
        with contextlib.redirect_stdout(capture), contextlib.redirect_stderr(capture):
            try:
                result = _check_result(job, _run_task(job, context, kwargs))
            except SkipTask as e:
                kind, error_type, error_message = "skipped", type(e).__name__, str(e)
            except BaseException as e:  # noqa: B036 -- whatever the task raises ends this attempt only
                kind = "fail_now" if isinstance(e, FailNow) else "failed"
                error_type, error_message = (
                    type(e).__name__,
                    str(e).strip().splitlines()[0] if str(e).strip() else "",
                )
                # the task's own frames only: the first frame is this function's call
                traceback.print_exception(
                    type(e), e, e.__traceback__.tb_next if e.__traceback__ else None, file=capture
                )
    finally:
        reset_context(token)
        root.removeHandler(handler)
        root.setLevel(old_level)
    from minimap.rules.expansion import lane_of

    label = _render_label(job.map_index_template, {**lane_of(job.args), **kwargs, **context})
    while _opened:
        _opened.pop().close()
    log, truncated = capture.text()
    return Outcome(kind, result, label, error_type, error_message, log, truncated)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its worker dies, so no attempt outlives its supervisor."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: an orphan finishes its attempt, then exits when the pipe closes


def _child_main(conn: Connection) -> None:
    # Ctrl-C and SIGTERM reach the whole process group; the worker, not its task processes, decides
    # what they mean (finish within the grace period, or be handed back).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(execute(job))


class TaskProcess:
    """A child process that runs attempts one after another; replaced when it times out or dies."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_child_main, args=(child,), daemon=True, name="minimap-task")
        self.process.start()
        child.close()
        self.job: Any = None  # what the worker sent, while busy
        self.deadline: float | None = None

    @property
    def busy(self) -> bool:
        return self.job is not None

    def send(self, job: Job, payload: Any, deadline: float | None) -> None:
        self.conn.send(job)
        self.job = payload
        self.deadline = deadline

    def receive(self) -> Outcome | None:
        """The finished attempt's outcome, or None if the process died instead."""
        try:
            outcome: Outcome = self.conn.recv()
        except (EOFError, OSError):
            return None
        self.job = None
        self.deadline = None
        return outcome

    def exit_description(self) -> str:
        self.process.join(timeout=1)
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                return f"the task process was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"the task process was killed by signal {-code}"
        return f"the task process exited with code {code}"

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        """Ask an idle process to exit."""
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.kill()
