"""The DAG registry of `minimap scheduler`: DAG files parsed in child processes, recorded in the database, and
their due scheduled runs created, each exactly once however many schedulers run.

Nothing here imports a DAG file: each file is loaded by `python -m minimap.execution.dagparse` in a child
process that the loop polls and never waits on, so a slow file (killed after MINIMAP_DAG_PARSE_TIMEOUT) or a
broken one holds up nothing else. A file is parsed again when its modification time changes; its error is
logged once per change and recorded for `minimap dags list`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path

from minimap import clock
from minimap.defaults import DAG_PARSE_TIMEOUT, DAG_SCAN_INTERVAL
from minimap.exceptions import MinimapError
from minimap.rules.newrun import initial_instances
from minimap.rules.timetable import Interval, run_id_for, timetable
from minimap.snapshot import DagSpec
from minimap.store import schedules
from minimap.store.storage import Store

log = logging.getLogger(__name__)
PARSERS = 4  # DAG files loading at once


def dag_files(paths: list[str]) -> dict[str, float]:
    """The DAG files under `paths` (files, or folders searched for *.py) and their modification times."""
    found: dict[str, float] = {}
    for path in paths:
        p = Path(path).resolve()
        candidates = [p] if p.is_file() else sorted(p.rglob("*.py")) if p.is_dir() else []
        for f in candidates:
            parts = f.relative_to(p).parts if f != p else ()
            if any(part.startswith((".", "__")) for part in parts):
                continue  # hidden files, __pycache__, __init__.py
            try:
                found[str(f)] = f.stat().st_mtime
            except OSError:
                continue  # removed meanwhile
    return found


@dataclass
class Parse:
    """One DAG file loading in a child process."""

    proc: subprocess.Popen[bytes]
    out: str
    mtime: float
    started: float


class Registry:
    """Keeps the database's record of the DAGs under `paths` current, and creates their due runs."""

    def __init__(self, store: Store, paths: list[str], timeout: float = DAG_PARSE_TIMEOUT) -> None:
        self.store = store
        self.paths = paths
        self.timeout = timeout
        self.parsed: dict[str, float] = {}  # file -> modification time last recorded
        self.parsing: dict[str, Parse] = {}
        self.folder = tempfile.mkdtemp(prefix="minimap-parse-")
        self.next_scan = 0.0
        self.told: dict[str, str] = {}  # dag_id -> the scheduling problem already logged
        self.paused: set[str] = set()  # DAGs seen paused (logged when that changes)
        # dag_id -> (parsed_at of the DAG as then recorded, the time before which nothing of it is due)
        self.wake: dict[str, tuple[datetime, datetime]] = {}

    def step(self) -> None:
        """Collect finished parses, start new ones, and (every DAG_SCAN_INTERVAL) create due runs."""
        self._collect()
        if time.monotonic() < self.next_scan:
            return
        self.next_scan = time.monotonic() + DAG_SCAN_INTERVAL
        current = dag_files(self.paths)
        gone = [f for f in self.parsed if f not in current]
        if gone:
            schedules.forget_files(self.store, gone)
            for f in gone:
                log.info("DAG file %s is gone: its DAGs are no longer scheduled", f)
                del self.parsed[f]
        for f, mtime in current.items():
            if len(self.parsing) >= PARSERS:
                break
            if f not in self.parsing and self.parsed.get(f) != mtime:
                self._start(f, mtime)
        self.schedule(clock.now())

    def close(self) -> None:
        for parse in self.parsing.values():
            parse.proc.kill()
            parse.proc.wait()
        self.parsing.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- parsing ------------------------------------------------------------------------------------------

    def _start(self, path: str, mtime: float) -> None:
        out = os.path.join(self.folder, f"{len(self.parsed)}-{os.getpid()}-{time.monotonic_ns()}.json")
        proc = subprocess.Popen(
            [sys.executable, "-m", "minimap.execution.dagparse", path, out],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.parsing[path] = Parse(proc, out, mtime, time.monotonic())

    def _collect(self) -> None:
        for path, parse in list(self.parsing.items()):
            if parse.proc.poll() is None:
                if time.monotonic() - parse.started < self.timeout:
                    continue
                parse.proc.kill()
                parse.proc.wait()
                self._record(path, parse, None, f"{path}: took more than {self.timeout:g} s to load "
                             "(MINIMAP_DAG_PARSE_TIMEOUT); move slow work into tasks")  # fmt: skip
                continue
            try:
                with open(parse.out, encoding="utf-8") as f:
                    answer = json.load(f)
                os.unlink(parse.out)
            except (OSError, ValueError):
                answer = {"error": f"{path}: loading it ended the process (exit code {parse.proc.returncode})"}
            self._record(path, parse, answer.get("dags"), answer.get("error"))

    def _record(self, path: str, parse: Parse, specs: list[dict[str, object]] | None, error: str | None) -> None:
        del self.parsing[path]
        try:
            schedules.record_file(self.store, path, specs, error)
        except MinimapError as e:
            log.warning("could not record DAG file %s: %s", path, e)
            return  # parsed again at the next scan
        self.parsed[path] = parse.mtime
        if error is not None:
            log.error("DAG file %s does not load: %s", path, error)
        else:
            log.info("DAG file %s: %s", path, ", ".join(str(s["dag_id"]) for s in specs or []) or "no DAGs")

    # --- scheduling ---------------------------------------------------------------------------------------

    def schedule(self, now: datetime) -> None:
        """Create the due scheduled runs of every unpaused DAG of these files."""
        for row in schedules.dags(self.store, list(self.parsed)):
            if row.paused != (row.dag_id in self.paused):
                log.info("DAG %s is %s", row.dag_id, "paused: no new scheduled runs" if row.paused else "unpaused")
                (self.paused.add if row.paused else self.paused.discard)(row.dag_id)
            if row.paused or row.schedule is None:
                continue
            wake = self.wake.get(row.dag_id)
            if wake is not None and wake[0] == row.parsed_at and now < wake[1]:
                continue  # nothing due yet: no query until then (a new parse of its file looks again)
            try:
                _, until = due_runs(self.store, row, now)
                self.told.pop(row.dag_id, None)
                if until is None:
                    self.wake.pop(row.dag_id, None)
                else:
                    self.wake[row.dag_id] = (row.parsed_at, until)
            except MinimapError as e:
                if self.told.get(row.dag_id) != str(e):
                    log.error("DAG %s is not scheduled: %s", row.dag_id, e)
                    self.told[row.dag_id] = str(e)


def create_due_runs(store: Store, row: schedules.DagRow, now: datetime) -> list[str]:
    """Create the DAG's runs due at `now` (oldest first, no more than max_active_runs leaves room for);
    returns the ids of those this call created (another scheduler may have created the rest)."""
    return due_runs(store, row, now)[0]


def due_runs(store: Store, row: schedules.DagRow, now: datetime) -> tuple[list[str], datetime | None]:
    """`create_due_runs`, and the time before which the DAG has nothing due (None: look again at the next scan,
    as when max_active_runs held runs back)."""
    spec = DagSpec.from_json(row.snapshot)
    tt = timetable(spec.schedule, spec.start_date, spec.end_date, spec.timezone)
    if tt is None:
        return [], None
    found = schedules.last_scheduled(store, spec.dag_id)
    last = Interval(*found) if found else None
    room = max(spec.max_active_runs - schedules.active_runs(store, spec.dag_id), 0)
    due = list(islice(tt.due(last, now, spec.catchup), room + 1))
    created = []
    for interval in due[:room]:
        run_id = run_id_for("scheduled", spec.dag_id, interval.logical_date)
        made = schedules.create_run_if_absent(
            store,
            run_id,
            spec.dag_id,
            spec.fileloc,
            json.dumps(row.snapshot),
            initial_instances(spec),
            "scheduled",
            (interval.start, interval.end),
        )
        if made:
            log.info("DAG %s: created run %s (data interval %s to %s)", spec.dag_id, run_id, interval.start,
                     interval.end)  # fmt: skip
            created.append(run_id)
        last = interval
    if len(due) > room:
        return created, None
    nxt = tt.next_interval(last, now, spec.catchup)
    return created, (nxt.end if nxt is not None else datetime.max.replace(tzinfo=now.tzinfo))
