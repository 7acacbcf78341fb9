"""Time schedules as Airflow 2 reads them: which data intervals a DAG's scheduled runs cover, and when each is due.

Pure: no clock and no database; `now` is always an argument. A cron expression (or a preset) is evaluated in
the DAG's time zone the way Airflow's `CronDataIntervalTimetable` does it across DST changes: a cron that names
its hours fires at that wall-clock time every day (a time skipped by the spring change fires just after it, a
repeated one fires once), and a cron that fires every hour fires every 60 real minutes. A timedelta schedule is
a grid anchored at `start_date` (Airflow anchors catchup=False runs at "now", which would let two schedulers pick
different logical dates). An interval is `[start, end)`; its run's logical date is `start`, and the run is due
once `end` has passed. `@once` is one run at `start_date` (an empty interval, as Airflow's).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from minimap.exceptions import DefinitionError

ONCE = "@once"
PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_EVERY = re.compile(r"every (\d+(?:\.\d+)?) seconds")
_OFFSET = re.compile(r"([+-])(\d\d):(\d\d)")


@dataclass(frozen=True)
class Interval:
    """A data interval `[start, end)` (aware, UTC); its run's logical date is `start`."""

    start: datetime
    end: datetime

    @property
    def logical_date(self) -> datetime:
        return self.start


def check_schedule(value: str) -> str:
    """`value` if it is a schedule minimap acts on (a preset, @once, a 5-field cron, "every N seconds"), else
    a DefinitionError saying what is accepted."""
    if value == ONCE or value in PRESETS or _EVERY.fullmatch(value):
        return value
    if value.startswith("@"):
        raise DefinitionError(
            f"schedule={value!r} is not supported: use {', '.join(PRESETS)}, {ONCE}, a cron expression, "
            "a timedelta, or None"
        )
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise DefinitionError(
            f"schedule={value!r} is not a cron expression (five fields: minute hour day-of-month month "
            "day-of-week, e.g. '30 2 * * *') nor a preset such as '@daily'"
        )
    return value


def zone_name(t: Any) -> str:
    """The time zone a DAG's schedule is evaluated in: its start_date's (zoneinfo or pendulum), naive = UTC."""
    tz: Any = getattr(t, "tzinfo", None)
    if tz is None or not isinstance(t, datetime):
        return "UTC"
    for attr in ("key", "name"):  # zoneinfo.ZoneInfo.key, pendulum's Timezone.name
        name = getattr(tz, attr, None)
        if isinstance(name, str) and name:
            return name
    offset = t.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def zone(name: str) -> tzinfo:
    """The tzinfo a `zone_name` stands for."""
    if name == "UTC":
        return timezone.utc
    m = _OFFSET.fullmatch(name)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return timezone(-delta if m.group(1) == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DefinitionError(f"unknown time zone {name!r} (an IANA name such as 'Europe/Amsterdam')") from None


def aware(value: datetime, tz: tzinfo) -> datetime:
    """`value` as an aware UTC time; a naive one is read in `tz`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(timezone.utc)


@dataclass(frozen=True)
class Timetable:
    """One DAG's time schedule: cron (and presets), a fixed period, or @once."""

    start_date: datetime  # aware UTC: the earliest logical date
    end_date: datetime | None  # no logical date after it
    tz: tzinfo
    cron: str | None = None
    period: timedelta | None = None  # a timedelta schedule
    once: bool = False
    # the cron parsed once (parsing costs ten times a step), and whether it names its hours
    _cron: Any = field(default=None, init=False, repr=False, compare=False)
    _names_hours: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.cron is not None:
            parsed = croniter(self.cron, datetime(2000, 1, 1))
            object.__setattr__(self, "_cron", parsed)
            object.__setattr__(self, "_names_hours", parsed.expanded[1] != ["*"])

    # --- the schedule's points in time (Airflow's _get_next, _get_prev, _align_to_next/prev) -------------------

    def _next(self, t: datetime) -> datetime:
        """The first point strictly after `t`."""
        if self.period is not None:
            return self.start_date + (self._steps(t) + 1) * self.period
        return self._cron_step(t, forward=True)

    def _prev(self, t: datetime) -> datetime:
        """The last point strictly before `t`."""
        if self.period is not None:
            steps = self._steps(t)
            on_point = self.start_date + steps * self.period == t
            return self.start_date + (steps - 1 if on_point else steps) * self.period
        return self._cron_step(t, forward=False)

    def _steps(self, t: datetime) -> int:
        assert self.period is not None
        return (t - self.start_date) // self.period

    def _cron_step(self, t: datetime, forward: bool) -> datetime:
        naive = t.astimezone(self.tz).replace(tzinfo=None)
        it = self._cron
        it.set_current(naive, force=True)
        found: datetime = it.get_next(datetime) if forward else it.get_prev(datetime)
        if self._names_hours:  # names its hours: that wall-clock time in the DAG's zone
            return aware(found, self.tz)
        return (t + (found - naive)).astimezone(
            timezone.utc
        )  # every hour: in real time, so a DST change neither skips nor repeats one

    def _align_next(self, t: datetime) -> datetime:
        after = self._next(t)
        return t if self._prev(after) == t else after

    def _align_prev(self, t: datetime) -> datetime:
        before = self._prev(t)
        return t if self._next(before) == t else before

    def _latest_start(self, now: datetime) -> datetime:
        """The start of the latest interval that has ended by `now` (Airflow's _skip_to_latest)."""
        last_start = self._prev(now)
        return last_start if self._next(last_start) == now else self._prev(last_start)

    # --- intervals --------------------------------------------------------------------------------------------

    def next_interval(self, last: Interval | None, now: datetime, catchup: bool) -> Interval | None:
        """The interval of the next scheduled run after `last` (the latest scheduled run's), or None when the
        schedule has ended. With catchup=False it skips to the latest interval that has ended by `now`."""
        now = now.astimezone(timezone.utc)
        if self.once:
            if last is not None or (self.end_date is not None and self.start_date > self.end_date):
                return None
            return Interval(self.start_date, self.start_date)
        earliest = self._align_next(self.start_date)
        if not catchup:
            earliest = max(earliest, self._latest_start(now))
        start = earliest if last is None else max(self._align_prev(last.end), earliest)
        if self.end_date is not None and start > self.end_date:
            return None
        return Interval(start, self._next(start))

    def due(self, last: Interval | None, now: datetime, catchup: bool) -> Iterator[Interval]:
        """The intervals whose runs are due at `now` after `last`, oldest first (catchup=False: the latest only)."""
        now = now.astimezone(timezone.utc)
        while True:
            nxt = self.next_interval(last, now, catchup)
            if nxt is None or nxt.end > now:
                return
            yield nxt
            last = nxt

    def between(self, first: datetime, last: datetime) -> Iterator[Interval]:
        """Every interval whose logical date is in `[first, last]` (a backfill), oldest first, ended or not."""
        if self.once:
            if first <= self.start_date <= last:
                yield Interval(self.start_date, self.start_date)
            return
        start = self._align_next(max(first, self.start_date))
        while start <= last and (self.end_date is None or start <= self.end_date):
            end = self._next(start)
            yield Interval(start, end)
            start = end


def run_id_for(kind: str, dag_id: str, logical_date: datetime) -> str:
    """A scheduled or backfill run's id: Airflow's `scheduled__<logical date>`, then the DAG id, since run ids
    are unique across DAGs here (a DAG id too long for the 250 characters is replaced by its hash)."""
    import hashlib

    head = f"{kind}__{logical_date.astimezone(timezone.utc).isoformat()}__"
    if len(head) + len(dag_id) > 250:
        dag_id = hashlib.sha256(dag_id.encode()).hexdigest()[:32]
    return head + dag_id


def timetable(schedule: str | None, start_date: str | None, end_date: str | None, tz_name: str) -> Timetable | None:
    """The timetable of a DAG's stored schedule fields (see DagSpec), or None for `schedule=None`."""
    if schedule is None:
        return None
    check_schedule(schedule)
    if start_date is None:
        raise DefinitionError(f"schedule={schedule!r} needs a start_date (as in Airflow 2)")
    tz = zone(tz_name)
    start = aware(datetime.fromisoformat(start_date), tz)
    end = aware(datetime.fromisoformat(end_date), tz) if end_date else None
    if schedule == ONCE:
        return Timetable(start, end, tz, once=True)
    m = _EVERY.fullmatch(schedule)
    if m:
        return Timetable(start, end, tz, period=timedelta(seconds=float(m.group(1))))
    return Timetable(start, end, tz, cron=PRESETS.get(schedule, schedule))
