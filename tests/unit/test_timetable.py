"""Time schedules without a database: which intervals are due, with and without catchup, across DST changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from minimap import DAG
from minimap.exceptions import DefinitionError
from minimap.rules.timetable import Interval, Timetable, timetable

UTC = timezone.utc
AMS = ZoneInfo("Europe/Amsterdam")


def of(dag: DAG) -> Timetable:
    spec = dag.spec()
    tt = timetable(spec.schedule, spec.start_date, spec.end_date, spec.timezone)
    assert tt is not None
    return tt


def starts(intervals: object) -> list[str]:
    return [i.start.isoformat() for i in intervals]  # type: ignore[attr-defined]


NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_hourly_from_three_hours_ago_is_three_runs_with_catchup_and_the_latest_without() -> None:
    tt = of(DAG("h", schedule="@hourly", start_date=NOW - timedelta(hours=3)))
    assert starts(tt.due(None, NOW, catchup=True)) == [
        "2026-12-02T06:00:00+00:00",
        "2026-12-02T07:00:00+00:00",
        "2026-12-02T08:00:00+00:00",
    ]
    assert [(i.start, i.end) for i in tt.due(None, NOW, catchup=False)] == [(NOW - timedelta(hours=1), NOW)]
    # an interval is due only once it has ended
    assert starts(tt.due(None, NOW - timedelta(minutes=1), catchup=True)) == starts(tt.due(None, NOW, True))[:2]


def test_after_the_last_run_only_later_intervals_come_and_catchup_false_skips_to_the_latest() -> None:
    tt = of(DAG("h", schedule="0 * * * *", start_date=datetime(2026, 12, 1)))
    last = Interval(NOW - timedelta(hours=5), NOW - timedelta(hours=4))
    assert len(list(tt.due(last, NOW, catchup=True))) == 4
    assert starts(tt.due(last, NOW, catchup=False)) == ["2026-12-02T08:00:00+00:00"]
    assert list(tt.due(Interval(NOW - timedelta(hours=1), NOW), NOW, catchup=False)) == []


def test_start_date_between_points_aligns_to_the_next_one_and_end_date_stops() -> None:
    tt = of(DAG("d", schedule="@daily", start_date=datetime(2026, 11, 28, 13, 5), end_date=datetime(2026, 11, 30)))
    assert starts(tt.due(None, NOW, catchup=True)) == ["2026-11-29T00:00:00+00:00", "2026-11-30T00:00:00+00:00"]
    assert (
        tt.next_interval(Interval(datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)), NOW, True)
        is None
    )


def test_a_cron_naming_its_hour_keeps_the_wall_clock_time_across_both_dst_changes() -> None:
    tt = of(DAG("c", schedule="30 2 * * *", start_date=datetime(2026, 3, 27, tzinfo=AMS)))
    spring = [i.start.astimezone(AMS).isoformat() for i in tt.due(None, datetime(2026, 4, 1, tzinfo=UTC), True)]
    # 2026-03-29 02:30 does not exist in Amsterdam: that day's run is at 03:30 summer time, as Airflow's
    assert spring == [
        "2026-03-27T02:30:00+01:00",
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    tt = of(DAG("c", schedule="0 3 * * *", start_date=datetime(2026, 10, 23, tzinfo=AMS)))
    autumn = [i.start.isoformat() for i in tt.due(None, datetime(2026, 10, 28, 3, tzinfo=UTC), True)]
    assert autumn == [  # 03:00 local is 01:00 UTC in summer time, 02:00 UTC after the change on the 25th
        "2026-10-23T01:00:00+00:00",
        "2026-10-24T01:00:00+00:00",
        "2026-10-25T02:00:00+00:00",
        "2026-10-26T02:00:00+00:00",
        "2026-10-27T02:00:00+00:00",
    ]


def test_an_hourly_cron_runs_every_60_real_minutes_through_the_repeated_hour() -> None:
    tt = of(DAG("h", schedule="@hourly", start_date=datetime(2026, 10, 25, tzinfo=AMS)))
    got = list(tt.due(None, datetime(2026, 10, 25, 4, tzinfo=UTC), True))
    assert [i.start.hour for i in got] == [22, 23, 0, 1, 2, 3]  # UTC: no hour skipped, none twice
    assert all(i.end - i.start == timedelta(hours=1) for i in got)
    local = [i.start.astimezone(AMS).strftime("%H:%M%z") for i in got]
    assert local[2:4] == ["02:00+0200", "02:00+0100"]  # the repeated hour runs in both of its occurrences


def test_a_timedelta_is_a_grid_from_start_date() -> None:
    tt = of(DAG("t", schedule=timedelta(minutes=90), start_date=datetime(2026, 12, 2, tzinfo=UTC)))
    assert starts(tt.due(None, datetime(2026, 12, 2, 4, 40, tzinfo=UTC), True)) == [
        "2026-12-02T00:00:00+00:00",
        "2026-12-02T01:30:00+00:00",
        "2026-12-02T03:00:00+00:00",
    ]
    assert starts(tt.due(None, datetime(2026, 12, 2, 4, 40, tzinfo=UTC), False)) == ["2026-12-02T03:00:00+00:00"]


def test_once_is_one_run_at_start_date() -> None:
    tt = of(DAG("o", schedule="@once", start_date=datetime(2026, 12, 1, 12)))
    (only,) = tt.due(None, NOW, catchup=False)
    assert only.start == only.end == datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert list(tt.due(only, NOW, catchup=True)) == []
    assert list(tt.due(None, datetime(2026, 12, 1, tzinfo=UTC), True)) == []  # not before its time


def test_between_gives_a_backfill_range_by_logical_date() -> None:
    tt = of(DAG("d", schedule="@daily", start_date=datetime(2026, 1, 1, tzinfo=AMS)))
    got = list(tt.between(datetime(2026, 3, 28, tzinfo=AMS), datetime(2026, 3, 30, tzinfo=AMS)))
    assert [i.start.astimezone(AMS).isoformat() for i in got] == [
        "2026-03-28T00:00:00+01:00",
        "2026-03-29T00:00:00+01:00",
        "2026-03-30T00:00:00+02:00",
    ]
    assert got[1].end - got[1].start == timedelta(hours=23)  # the day of the spring change is 23 hours long


def test_the_schedule_zone_is_the_start_dates() -> None:
    dag = DAG("p", schedule="@daily", start_date=datetime(2026, 1, 1, tzinfo=ZoneInfo("America/New_York")))
    assert dag.spec().timezone == "America/New_York"
    assert DAG("n", schedule="@daily", start_date=datetime(2026, 1, 1)).spec().timezone == "UTC"
    fixed = DAG(
        "f", schedule="@daily", start_date=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    )
    assert fixed.spec().timezone == "+05:30"
    assert starts(of(fixed).due(None, datetime(2026, 1, 2, tzinfo=UTC), True)) == ["2025-12-31T18:30:00+00:00"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"schedule": "0 2 * *", "start_date": datetime(2026, 1, 1)}, "is not a cron expression"),
        ({"schedule": "61 * * * *", "start_date": datetime(2026, 1, 1)}, "is not a cron expression"),
        ({"schedule": "@continuous", "start_date": datetime(2026, 1, 1)}, "'@continuous' is not supported"),
        ({"schedule": "@daily"}, "has schedule='@daily' but no start_date"),
        ({"schedule": timedelta(0), "start_date": datetime(2026, 1, 1)}, "must be a positive timedelta"),
    ],
)
def test_a_schedule_minimap_cannot_act_on_is_refused_at_load(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        DAG("bad", **kwargs)
