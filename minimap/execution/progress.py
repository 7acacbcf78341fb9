"""Live progress while a run is driven, and the summary at its end."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterable, Mapping
from typing import TextIO

from minimap.defaults import PASS_SHARE, PROGRESS_INTERVAL
from minimap.rules import tolerance
from minimap.states import FINISHED, RunState, TIState
from minimap.store.rows import InstanceRow
from minimap.store.storage import Store

_UNICODE = {
    TIState.SUCCESS: "✓",
    TIState.FAILED: "✗",
    TIState.RUNNING: "▶",
    TIState.UP_FOR_RETRY: "↻",
    TIState.UPSTREAM_FAILED: "⇡",
    TIState.SKIPPED: "⊘",
    TIState.QUEUED: "…",
}
_ASCII = {
    TIState.SUCCESS: "ok=",
    TIState.FAILED: "failed=",
    TIState.RUNNING: "running=",
    TIState.UP_FOR_RETRY: "retry=",
    TIState.UPSTREAM_FAILED: "upstream_failed=",
    TIState.SKIPPED: "skipped=",
    TIState.QUEUED: "queued=",
}


def _symbols(stream: TextIO) -> dict[TIState, str]:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    return _UNICODE if encoding == "utf8" else _ASCII


def task_line(task_id: str, counts: Mapping[TIState, int], symbols: Mapping[TIState, str]) -> str:
    """`send_shipping_order 7/12 ✓6 ✗1 ▶3`: finished/total, then the count of each notable state."""
    total = sum(n for s, n in counts.items() if s is not TIState.REMOVED)
    done = sum(n for s, n in counts.items() if s in FINISHED and s is not TIState.REMOVED)
    parts = [f"{symbols[s]}{counts[s]}" for s in symbols if counts.get(s)]
    return f"{task_id} {done}/{total}" + (" " + " ".join(parts) if parts else "")


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // total if total else width
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class Progress:
    """Per-task counts by state: redrawn in place on a terminal, a plain line now and then otherwise."""

    def __init__(self, store: Store, run_id: str, stream: TextIO | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.symbols = _symbols(self.stream)
        self.order = list(store.spec(run_id).tasks)
        self.started = time.monotonic()
        self.last = 0.0
        self.gap = 0.0
        self.drawn = 0
        self.last_line = ""

    def __call__(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < max(0.25 if self.tty else PROGRESS_INTERVAL, self.gap):
            return
        self.last = now
        counts = self.store.counts(self.run_id)
        self.gap = PASS_SHARE * (time.monotonic() - now)  # counting is O(N): a large run is redrawn less often
        lines = [task_line(t, counts.get(t, {}), self.symbols) for t in self.order]
        if self.tty:
            self._redraw(lines, counts)
        else:
            line = f"[{now - self.started:6.1f}s] " + " | ".join(lines)
            if line.split("] ", 1)[1] != self.last_line:
                print(line, file=self.stream, flush=True)
                self.last_line = line.split("] ", 1)[1]

    def _redraw(self, lines: list[str], counts: Mapping[str, Mapping[TIState, int]]) -> None:
        out = []
        if self.drawn:
            out.append(f"\x1b[{self.drawn}F")
        width = max(len(t) for t in self.order)
        for tid, line in zip(self.order, lines, strict=True):
            c = counts.get(tid, {})
            total = sum(n for s, n in c.items() if s is not TIState.REMOVED)
            done = sum(n for s, n in c.items() if s in FINISHED and s is not TIState.REMOVED)
            out.append(f"  {tid:<{width}} {_bar(done, total)} {line[len(tid) + 1 :]}\x1b[K\n")
        self.drawn = len(lines)
        self.stream.write("".join(out))
        self.stream.flush()


def summary(store: Store, run_id: str, state: RunState, seconds: float | None = None) -> str:
    """What happened: per-task counts, and each failed instance with the command that retries it."""
    run = store.run(run_id)
    spec = store.spec(run_id)
    counts = store.counts(run_id)
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    lines = [f"run {run_id} of {run.dag_id}: {state}{took}"]
    width = max(len(t) for t in spec.tasks)
    for tid in spec.tasks:
        c = counts.get(tid, {})
        parts = ", ".join(f"{s} {n}" for s, n in sorted(c.items(), key=lambda kv: list(TIState).index(kv[0])))
        said = tolerance.verdict(spec.tasks[tid], c)  # a tolerated_failures decided the task's outcome
        lines.append(f"  {tid:<{width}}  {parts}" + (f" ({said})" if said else ""))
    tallies = store.tallies(run_id, spec, counts)
    for gid, group in spec.groups.items():
        said = tolerance.group_verdict(spec, group, counts, tallies.get(gid))  # a group's tolerated_failures
        if said:
            lines.append(f"  group {gid}: {said}")
    failed = store.instances(run_id, states=[TIState.FAILED])
    if failed:
        lines.extend(_failed_lines(run_id, spec.tasks, failed))
    return "\n".join(lines)


#: Failed instances the summary names one by one; the rest are counted.
SHOWN_FAILURES = 5


def _failed_lines(run_id: str, task_order: Iterable[str], failed: list[InstanceRow]) -> list[str]:
    """A few failed instances with their errors, then the one command that retries every one of them."""
    order = {t: i for i, t in enumerate(task_order)}
    failed = sorted(failed, key=lambda r: (order.get(r.task_id, 0), r.map_index))
    lines = [f"failed instances ({len(failed)}):"]
    for i in failed[:SHOWN_FAILURES]:
        name = f"{i.task_id}[{i.map_index}]" if i.map_index >= 0 else i.task_id
        label = f" ({i.label})" if i.label else ""
        lines.append(f"  {name}{label} try {i.try_number}: {i.error or 'failed'}")
    if len(failed) > SHOWN_FAILURES:
        listing = shlex.join(["minimap", "tasks", "--run-id", run_id, "--state", "failed"])
        lines.append(f"  ... and {len(failed) - SHOWN_FAILURES} more ({listing})")
    first = failed[0]
    one = ["minimap", "clear", "--run-id", run_id, "--task", first.task_id]
    if first.map_index >= 0:
        one += ["--map-index", str(first.map_index)]
    if len(failed) == 1:
        lines.append(f"retry it: {shlex.join(one)}")
        return lines
    tasks = {i.task_id for i in failed}
    every = ["minimap", "clear", "--run-id", run_id, *(["--task", first.task_id] if len(tasks) == 1 else [])]
    lines.append(f"retry all {len(failed)}: {shlex.join([*every, '--state', 'failed'])}")
    lines.append(f"or just one: {shlex.join(one)}")
    return lines
