"""Time schedules as users see and steer them: the recorded DAGs with their next run, pause, and backfill."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from minimap import clock
from minimap.exceptions import DefinitionError, MinimapError
from minimap.rules.newrun import initial_instances
from minimap.rules.timetable import Interval, aware, run_id_for, timetable, zone
from minimap.service.pools import check_pools
from minimap.snapshot import DagSpec
from minimap.store import schedules
from minimap.store.rows import RunRow
from minimap.store.storage import Store

MAX_BACKFILL = 1000  # runs one backfill may create: a longer range is almost always a mistyped date


@dataclass(frozen=True)
class DagInfo:
    """One recorded DAG, or a DAG file that does not load (dag_id None)."""

    dag_id: str | None
    fileloc: str
    schedule: str | None
    paused: bool
    next_logical_date: datetime | None  # the next scheduled run's logical date
    next_due: datetime | None  # when that run is created (its data interval's end)
    error: str | None


def list_dags(store: Store, now: datetime | None = None) -> list[DagInfo]:
    """Every recorded DAG by dag_id with its next run, then the files that do not load and define no DAG."""
    now = now or clock.now()
    found = []
    for row in schedules.dags(store):
        nxt: Interval | None = None
        error = row.error
        try:
            spec = DagSpec.from_json(row.snapshot)
            tt = timetable(spec.schedule, spec.start_date, spec.end_date, spec.timezone)
            if tt is not None:
                last = schedules.last_scheduled(store, spec.dag_id)
                nxt = tt.next_interval(Interval(*last) if last else None, now, spec.catchup)
        except MinimapError as e:
            error = error or str(e)
        found.append(
            DagInfo(
                row.dag_id,
                row.fileloc,
                row.schedule,
                row.paused,
                nxt.logical_date if nxt else None,
                nxt.end if nxt else None,
                error,
            )
        )
    recorded = {d.fileloc for d in found}
    for fileloc, error in sorted(schedules.file_errors(store).items()):
        if fileloc not in recorded:
            found.append(DagInfo(None, fileloc, None, False, None, None, error))
    return found


def dag_json(d: DagInfo) -> dict[str, Any]:
    """One DAG as `minimap dags list --json` prints it."""
    return {
        "dag_id": d.dag_id,
        "schedule": d.schedule,
        "paused": d.paused,
        "next_logical_date": d.next_logical_date.isoformat() if d.next_logical_date else None,
        "next_due": d.next_due.isoformat() if d.next_due else None,
        "fileloc": d.fileloc,
        "error": d.error,
    }


def set_paused(store: Store, dag_id: str, paused: bool) -> None:
    """Pause (no new scheduled runs; runs already made go on) or unpause a recorded DAG."""
    schedules.set_paused(store, dag_id, paused)


def parse_when(text: str, spec: DagSpec, what: str) -> datetime:
    """A --start/--end value: an ISO date or datetime; without a zone, in the DAG's time zone."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise DefinitionError(f"{what} {text!r} is not a date (e.g. 2026-03-01 or 2026-03-01T06:00)") from None
    return aware(value, zone(spec.timezone))


def load_spec(path: str, dag_id: str | None = None) -> DagSpec:
    """The frozen structure of the DAG in `path` (its file recorded as an absolute path)."""
    from minimap.authoring.loader import load_dag

    dag = load_dag(path, dag_id)
    dag.fileloc = os.path.abspath(path)
    return dag.spec()


def backfill_file(store: Store, path: str, start: str, end: str, dag_id: str | None = None) -> list[RunRow]:
    """Create (or re-use) the runs of the file's DAG whose logical dates are in [start, end] (ISO; without a zone,
    in the DAG's), oldest first; a scheduler and workers, or `run_to_end`, run them."""
    spec = load_spec(path, dag_id)
    first, last = parse_when(start, spec, "start"), parse_when(end, spec, "end")
    return [run for run, _ in backfill(store, spec, first, last)]


def backfill(store: Store, spec: DagSpec, first: datetime, last: datetime) -> list[tuple[RunRow, bool]]:
    """The runs of every logical date of the schedule in `[first, last]`, oldest first: each one the DAG already
    has (whoever made it), else a new `backfill__` run; with True for those this call created."""
    tt = timetable(spec.schedule, spec.start_date, spec.end_date, spec.timezone)
    if tt is None:
        raise DefinitionError(f"DAG {spec.dag_id} has no schedule, so no logical dates to backfill: `minimap run` it")
    if last < first:
        raise DefinitionError(f"--end {last.isoformat()} is before --start {first.isoformat()}")
    intervals = []
    for interval in tt.between(first, last):
        intervals.append(interval)
        if len(intervals) > MAX_BACKFILL:
            raise DefinitionError(
                f"that range holds more than {MAX_BACKFILL} runs of DAG {spec.dag_id} ({spec.schedule}): "
                "backfill a shorter range at a time"
            )
    check_pools(store, spec)  # before any run is made
    snapshot = json.dumps(spec.to_dict())
    instances = initial_instances(spec)
    found = []
    for interval in intervals:
        run_id = run_id_for("backfill", spec.dag_id, interval.logical_date)
        made = schedules.create_run_if_absent(
            store, run_id, spec.dag_id, spec.fileloc, snapshot, instances, "backfill", (interval.start, interval.end)
        )
        run = schedules.run_at(store, spec.dag_id, interval.logical_date)
        assert run is not None  # created now, or the one that was there
        found.append((run, made))
    return found
