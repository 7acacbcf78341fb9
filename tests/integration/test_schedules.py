"""Scheduled runs on both databases: due intervals created once, catchup, DST, max_active_runs, pause, backfill."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from minimap import DAG, api, task
from minimap.exceptions import DefinitionError, NotFoundError
from minimap.execution.registry import create_due_runs
from minimap.service import schedules as service
from minimap.snapshot import DagSpec
from minimap.states import RunState
from minimap.store import schedules
from minimap.store.storage import Store
from minimap.ui.app import create_app
from minimap.ui.format import url

UTC = timezone.utc
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def record(store: Store, fileloc: str = "/dags/d.py", **kwargs: Any) -> schedules.DagRow:
    """Record a one-task DAG with these keywords as the registry would, and return its row."""
    with DAG(kwargs.pop("dag_id", "d"), **kwargs) as dag:
        task(lambda: 1, task_id="t")()
    dag.fileloc = fileloc
    schedules.record_file(store, fileloc, [dag.spec().to_dict()], None)
    (row,) = [r for r in schedules.dags(store) if r.dag_id == dag.dag_id]
    return row


def logical_dates(store: Store, dag_id: str = "d") -> list[str]:
    runs = store.runs(dag_id=dag_id)
    return sorted(r.logical_date.isoformat() for r in runs if r.logical_date is not None)


def test_hourly_from_three_hours_ago_creates_three_runs_with_catchup_and_one_without(store: Store) -> None:
    start = NOW - timedelta(hours=3)
    row = record(store, dag_id="with", schedule="@hourly", start_date=start, catchup=True)
    assert len(create_due_runs(store, row, NOW)) == 3
    assert create_due_runs(store, row, NOW) == []  # exactly once
    assert logical_dates(store, "with") == [(start + timedelta(hours=h)).isoformat() for h in range(3)]
    run = store.run(f"scheduled__{start.isoformat()}__with")
    assert (run.run_type, run.data_interval_start, run.data_interval_end) == (
        "scheduled",
        start,
        start + timedelta(hours=1),
    )
    assert run.state is RunState.QUEUED and run.conf == {}

    row = record(store, "/dags/e.py", dag_id="without", schedule="@hourly", start_date=start, catchup=False)
    assert create_due_runs(store, row, NOW) == [f"scheduled__{(NOW - timedelta(hours=1)).isoformat()}__without"]
    assert create_due_runs(store, row, NOW + timedelta(minutes=59)) == []
    assert len(create_due_runs(store, row, NOW + timedelta(hours=1))) == 1  # the next hour, when it ends


def test_a_cron_in_a_time_zone_gets_the_right_logical_dates_across_the_spring_change(store: Store) -> None:
    ams = ZoneInfo("Europe/Amsterdam")
    row = record(store, schedule="30 2 * * *", start_date=datetime(2026, 3, 28, tzinfo=ams), catchup=True)
    create_due_runs(store, row, datetime(2026, 3, 31, 6, tzinfo=UTC))
    assert logical_dates(store) == [
        "2026-03-28T01:30:00+00:00",  # 02:30 winter time
        "2026-03-29T01:30:00+00:00",  # 02:30 does not exist that day: 03:30 summer time, as Airflow
        "2026-03-30T00:30:00+00:00",  # 02:30 summer time
    ]
    run = store.run("scheduled__2026-03-29T01:30:00+00:00__d")
    assert run.data_interval_end == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)


def test_end_date_stops_the_schedule(store: Store) -> None:
    row = record(
        store, schedule="@daily", start_date=datetime(2026, 11, 1), end_date=datetime(2026, 11, 3), catchup=True
    )
    create_due_runs(store, row, NOW)
    assert len(logical_dates(store)) == 3


def test_max_active_runs_makes_catchup_runs_wait_for_each_other(store: Store, tmp_path: Path) -> None:
    dag_file = tmp_path / "one.py"
    dag_file.write_text(
        "from datetime import datetime\nfrom minimap import DAG, task\n"
        "with DAG('one', schedule='@daily', start_date=datetime(2026, 11, 28), catchup=True, max_active_runs=1):\n"
        "    task(lambda: 1, task_id='t')()\n"
    )
    spec = api.load_spec(str(dag_file))
    schedules.record_file(store, str(dag_file), [spec.to_dict()], None)
    (row,) = schedules.dags(store)
    order = []
    for _ in range(4):
        created = create_due_runs(store, row, NOW)
        assert len(created) == 1  # one at a time: the next is created once this one has finished
        assert api.run_to_end(store, created[0], workers=1) is RunState.SUCCESS
        order.append(created[0])
    assert create_due_runs(store, row, NOW) == []
    assert order == sorted(order) and len(set(order)) == 4


def test_pause_stops_new_runs_and_unpause_follows_catchup(store: Store) -> None:
    start = NOW - timedelta(hours=2)
    for catchup in (True, False):
        dag_id = f"catchup_{catchup}".lower()
        row = record(store, f"/dags/{dag_id}.py", dag_id=dag_id, schedule="@hourly", start_date=start, catchup=catchup)
        create_due_runs(store, row, NOW)
        service.set_paused(store, dag_id, True)
        assert [r.paused for r in schedules.dags(store) if r.dag_id == dag_id] == [True]
        later = NOW + timedelta(hours=3)  # three intervals end while paused; a paused DAG is skipped by the registry
        service.set_paused(store, dag_id, False)
        (row,) = [r for r in schedules.dags(store) if r.dag_id == dag_id]
        before = set(logical_dates(store, dag_id))
        create_due_runs(store, row, later)
        new = sorted(set(logical_dates(store, dag_id)) - before)
        hours = [0, 1, 2] if catchup else [2]  # catchup: the missed ones; otherwise only the latest
        assert new == [(NOW + timedelta(hours=h)).isoformat() for h in hours], catchup
        assert len(logical_dates(store, dag_id)) == len(set(logical_dates(store, dag_id)))
    with pytest.raises(NotFoundError, match="no DAG 'nope' recorded"):
        service.set_paused(store, "nope", True)


def test_backfill_reuses_the_run_a_date_has_and_never_duplicates(store: Store) -> None:
    row = record(store, schedule="@daily", start_date=datetime(2026, 11, 1), catchup=False)
    (scheduled,) = create_due_runs(store, row, NOW)  # 2026-12-01
    spec = DagSpec.from_json(row.snapshot)
    first, last = datetime(2026, 11, 29, tzinfo=UTC), datetime(2026, 12, 1, 12, tzinfo=UTC)
    found = service.backfill(store, spec, first, last)
    assert [(r.run_id, made) for r, made in found] == [
        ("backfill__2026-11-29T00:00:00+00:00__d", True),
        ("backfill__2026-11-30T00:00:00+00:00__d", True),
        (scheduled, False),
    ]
    assert [made for _, made in service.backfill(store, spec, first, last)] == [False, False, False]
    assert len(store.runs(dag_id="d")) == 3
    with pytest.raises(DefinitionError, match="before --start"):
        service.backfill(store, spec, last, first)


def test_manual_runs_have_no_logical_date_so_they_never_collide(store: Store, tmp_path: Path) -> None:
    dag_file = tmp_path / "m.py"
    dag_file.write_text("from minimap import DAG, task\nwith DAG('m'):\n    task(lambda: 1, task_id='t')()\n")
    runs = [api.trigger_file(store, str(dag_file)) for _ in range(3)]
    assert all(r.logical_date is None and r.run_type == "manual" for r in runs)
    assert runs[0].logical == (runs[0].created_at,) * 3  # Airflow's: the trigger time, an empty interval


def test_the_registry_keeps_paused_state_and_forgets_what_a_file_no_longer_defines(store: Store) -> None:
    record(store, "/dags/x.py", dag_id="a", schedule="@daily", start_date=datetime(2026, 1, 1))
    service.set_paused(store, "a", True)
    record(store, "/dags/x.py", dag_id="a", schedule="@hourly", start_date=datetime(2026, 1, 1))
    assert [(r.dag_id, r.schedule, r.paused) for r in schedules.dags(store)] == [("a", "@hourly", True)]
    schedules.record_file(store, "/dags/x.py", None, "x.py:1: SyntaxError: oops")
    assert [(r.dag_id, r.error) for r in schedules.dags(store)] == [("a", "x.py:1: SyntaxError: oops")]
    schedules.record_file(store, "/dags/x.py", [], None)
    assert schedules.dags(store) == []
    record(store, "/dags/y.py", dag_id="b", schedule="@daily", start_date=datetime(2026, 1, 1),
           is_paused_upon_creation=True)  # fmt: skip
    schedules.forget_files(store, ["/dags/x.py"])
    assert [(r.dag_id, r.paused) for r in schedules.dags(store)] == [("b", True)]


def test_the_web_page_shows_a_scheduled_runs_type_logical_date_and_data_interval(store: Store) -> None:
    row = record(store, schedule="@daily", start_date=datetime(2026, 11, 1), catchup=False)
    (run_id,) = create_due_runs(store, row, NOW)
    with TestClient(create_app(store)) as c:
        runs = c.get("/").text
        run = c.get(url("runs", run_id)).text
    assert "<td>scheduled</td>" in runs and "2026-12-01 00:00:00" in runs
    assert "scheduled run · logical date 2026-12-01 00:00:00" in run
    assert "data interval 2026-12-01 00:00:00 → 2026-12-02 00:00:00" in run
