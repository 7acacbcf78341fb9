"""`minimap scheduler --dags`, `dags list|pause|unpause` and `backfill` as users run them, with a set clock
(MINIMAP_FAKE_NOW): runs start by themselves, once each, however many schedulers run."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from minimap import api
from minimap.states import RunState
from minimap.store.storage import Store
from tests.acceptance.test_daemons import Processes, wait_for
from tests.conftest import minimap_cli

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)
FAST = {"MINIMAP_DAG_SCAN_INTERVAL": "0.1", "MINIMAP_FAKE_NOW": NOW.isoformat()}


def dag_file(folder: Path, dag_id: str, schedule: str, start: datetime, **kwargs: object) -> Path:
    """A DAG file whose one task returns its data interval and ds."""
    extra = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    path = folder / f"{dag_id}.py"
    path.write_text(
        "from datetime import datetime, timezone\n"
        "from minimap import DAG, task\n\n"
        f"start = datetime.fromisoformat({start.isoformat()!r})\n"
        f"with DAG({dag_id!r}, schedule={schedule!r}, start_date=start{extra}):\n"
        "    @task\n"
        "    def show(ds=None, data_interval_start=None, data_interval_end=None):\n"
        "        return [ds, data_interval_start.isoformat(), data_interval_end.isoformat()]\n\n"
        "    show()\n"
    )
    return path


@pytest.fixture
def procs(db_url: str, tmp_path: Path) -> Iterator[Processes]:
    (tmp_path / "logs").mkdir()
    p = Processes(db_url, tmp_path / "logs")
    yield p
    p.stop_all()


def logical(store: Store, dag_id: str) -> list[str]:
    return sorted(r.logical_date.isoformat() for r in store.runs(dag_id=dag_id) if r.logical_date)


def hours(*offsets: int) -> list[str]:
    return [(NOW + timedelta(hours=h)).isoformat() for h in offsets]


@pytest.mark.slow
def test_hourly_catchup_creates_three_runs_and_one_without_and_a_broken_file_is_reported_once_per_change(
    store: Store, procs: Processes, tmp_path: Path
) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_file(dags, "with_catchup", "@hourly", NOW - timedelta(hours=3), catchup=True)
    dag_file(dags, "without", "@hourly", NOW - timedelta(hours=3), catchup=False)
    broken = dags / "broken.py"
    broken.write_text("from minimap import DAG\nDAG('b', schedule='every day')\n")
    procs.start("scheduler", "--dags", str(dags), env=FAST)
    wait_for(lambda: len(store.runs()) == 4, 30, "four scheduled runs", procs)
    assert logical(store, "with_catchup") == hours(-3, -2, -1)
    assert logical(store, "without") == hours(-1)
    assert all(r.run_type == "scheduled" and r.run_id.startswith("scheduled__") for r in store.runs())

    listed = minimap_cli("dags", "list", db_url=procs.db_url)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["dag_id", "schedule", "next", "run", "paused", "file", "error"]
    (bad,) = [ln for ln in lines if "broken.py" in ln]
    assert "schedule='every day' is not a cron expression" in bad
    (good,) = [ln for ln in lines if ln.startswith("with_catchup")]
    assert "@hourly" in good and "(due " in good and good.split()[-1].endswith("with_catchup.py")
    as_json = {
        d["dag_id"]: d for d in _json(minimap_cli("dags", "list", "--json", db_url=procs.db_url, env=FAST).stdout)
    }
    assert as_json["with_catchup"]["next_logical_date"] == NOW.isoformat()
    assert as_json["with_catchup"]["next_due"] == (NOW + timedelta(hours=1)).isoformat()
    assert "broken.py:2: schedule='every day' is not a cron expression" in as_json[None]["error"]

    said = lambda: procs.logs().count("broken.py does not load")  # noqa: E731
    assert said() == 1
    broken.write_text("from minimap import DAG\nDAG('b', schedule='0 0 * *')\n")  # a new change, still broken
    os.utime(broken, (1, 1))
    wait_for(lambda: said() == 2, 30, "the changed file to be reported again", procs)
    dag_file(dags, "broken", "@daily", NOW - timedelta(days=2, hours=9), catchup=True)  # fixed: it is scheduled too
    wait_for(lambda: len(logical(store, "broken")) == 2, 30, "the fixed file's runs", procs)
    assert said() == 2 and len(store.runs()) == 6


@pytest.mark.slow
def test_pause_stops_new_runs_and_unpause_resumes_following_catchup(
    store: Store, procs: Processes, tmp_path: Path
) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_file(dags, "catching", "@hourly", NOW - timedelta(hours=1), catchup=True)
    dag_file(dags, "latest", "@hourly", NOW - timedelta(hours=1), catchup=False)
    first = procs.start("scheduler", "--dags", str(dags), env=FAST)
    wait_for(lambda: len(store.runs()) == 2, 30, "the first runs", procs)
    for dag_id in ("catching", "latest"):
        assert minimap_cli("dags", "pause", dag_id, db_url=procs.db_url).stdout == f"DAG {dag_id} paused\n"
    wait_for(lambda: procs.logs().count("is paused: no new scheduled runs") == 2, 30, "the pause to be seen", procs)
    first.send_signal(signal.SIGTERM)
    first.wait(30)

    later = {**FAST, "MINIMAP_FAKE_NOW": (NOW + timedelta(hours=3)).isoformat()}  # three hours end while paused
    procs.start("scheduler", "--dags", str(dags), env=later)
    wait_for(lambda: procs.logs().count("is paused: no new scheduled runs") == 4, 30, "the new scheduler", procs)
    wait_for(lambda: procs.logs().count("registry: DAG file ") >= 4, 30, "both files parsed by it", procs)
    assert len(store.runs()) == 2  # paused: nothing new
    listed = minimap_cli("dags", "list", "--json", db_url=procs.db_url, env=later)
    assert [(d["dag_id"], d["paused"], d["next_logical_date"]) for d in _json(listed.stdout)] == [
        ("catching", True, NOW.isoformat()),
        ("latest", True, (NOW + timedelta(hours=2)).isoformat()),
    ]

    for dag_id in ("catching", "latest"):
        assert minimap_cli("dags", "unpause", dag_id, db_url=procs.db_url).returncode == 0
    wait_for(lambda: len(store.runs()) == 6, 30, "the runs missed while paused", procs)
    assert logical(store, "catching") == hours(-1, 0, 1, 2)  # catchup: every missed interval, once
    assert logical(store, "latest") == hours(-1, 2)  # no catchup: the latest only

    unknown = minimap_cli("dags", "pause", "nope", db_url=procs.db_url)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: no DAG 'nope' recorded")


def _json(text: str) -> list[dict[str, object]]:
    import json

    return json.loads(text)


@pytest.mark.slow
def test_max_active_runs_1_makes_catchup_runs_go_one_after_another(
    store: Store, procs: Processes, tmp_path: Path
) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_file(dags, "serial", "@daily", NOW - timedelta(days=3, hours=9), catchup=True, max_active_runs=1)
    procs.start("scheduler", "--dags", str(dags), env=FAST)
    procs.start("worker", "--concurrency", "2")
    done = lambda: [r for r in store.runs(dag_id="serial") if r.state is RunState.SUCCESS]  # noqa: E731
    wait_for(lambda: len(done()) == 3, 60, "three runs to succeed", procs)
    runs = sorted(done(), key=lambda r: r.id)
    assert [r.logical_date.isoformat() for r in runs if r.logical_date] == [
        "2026-11-29T00:00:00+00:00",
        "2026-11-30T00:00:00+00:00",
        "2026-12-01T00:00:00+00:00",
    ]
    for before, after in zip(runs, runs[1:], strict=False):
        assert before.ended_at and after.started_at and after.started_at >= before.ended_at
        assert after.created_at >= before.ended_at  # created only when there was room: oldest first
    (result,) = [i.result for i in store.instances(runs[0].run_id)]
    assert result == ["2026-11-29", "2026-11-29T00:00:00+00:00", "2026-11-30T00:00:00+00:00"]


@pytest.mark.slow
def test_two_schedulers_on_one_postgres_create_each_run_once(
    db_url: str, store: Store, procs: Processes, tmp_path: Path
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several schedulers on one database is what Postgres is for")
    dags = tmp_path / "dags"
    dags.mkdir()
    for n in range(3):
        dag_file(dags, f"d{n}", "@hourly", NOW - timedelta(hours=40), catchup=True, max_active_runs=100)
    a = procs.start("scheduler", "--dags", str(dags), env=FAST)
    b = procs.start("scheduler", "--dags", str(dags), env=FAST)
    wait_for(lambda: len(store.runs(limit=1000)) == 120, 60, "120 runs", procs)
    wait_for(lambda: procs.logs().count("registry: DAG file ") == 6, 30, "both schedulers to record the files", procs)
    for p in (a, b):
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    logs = procs.logs()
    assert len(store.runs(limit=1000)) == 120
    assert logs.count(": created run scheduled__") == 120  # each run created by exactly one of them
    assert "Traceback" not in logs and "ERROR" not in logs
    assert a.returncode == 0 and b.returncode == 0


@pytest.mark.slow
def test_backfill_runs_a_past_range_and_reuses_what_exists(db_url: str, store: Store, tmp_path: Path) -> None:
    path = dag_file(tmp_path, "daily", "@daily", datetime(2026, 11, 1, tzinfo=timezone.utc), catchup=False)
    args = ("backfill", str(path), "--start", "2026-11-28", "--end", "2026-11-30")
    first = minimap_cli(*args, db_url=db_url)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("created backfill__") == 3
    runs = sorted(store.runs(dag_id="daily"), key=lambda r: r.id)
    assert [(r.run_type, r.state) for r in runs] == [("backfill", RunState.SUCCESS)] * 3
    assert [store.instances(r.run_id)[0].result[0] for r in runs] == ["2026-11-28", "2026-11-29", "2026-11-30"]

    again = minimap_cli(*args[:-1], "2026-12-01", "--no-wait", db_url=db_url)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("exists  backfill__") == 3 and again.stderr.count("created backfill__") == 1
    assert len(store.runs(dag_id="daily")) == 4

    manual = tmp_path / "manual.py"
    manual.write_text("from minimap import DAG, task\nwith DAG('m'):\n    task(lambda: 1, task_id='t')()\n")
    refused = minimap_cli("backfill", str(manual), "--start", "2026-11-28", "--end", "2026-11-30", db_url=db_url)
    assert refused.returncode == 2 and refused.stderr == (
        "error: DAG m has no schedule, so no logical dates to backfill: `minimap run` it\n"
    )
    bad = minimap_cli("backfill", str(path), "--start", "yesterday", "--end", "2026-11-30", db_url=db_url)
    assert bad.returncode == 2 and "--start 'yesterday' is not a date" in bad.stderr
    assert api.open_store(db_url).runs(dag_id="m") == []


def test_a_dags_path_that_does_not_exist_is_one_line_and_exit_2(db_url: str, tmp_path: Path) -> None:
    proc = minimap_cli("scheduler", "--dags", str(tmp_path / "nope"), db_url=db_url)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: Invalid value for --dags: no such file or folder: ")
    assert len(proc.stderr.splitlines()) == 1
