"""`minimap db prune`: finished runs older than a date go, with everything they own; nothing else moves."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, update

from minimap import api
from minimap.states import RunState
from minimap.store.prune import Pruned, _delete_run, prune
from minimap.store.storage import Store
from minimap.store.tables import dag_run, task_instance, task_try
from tests.conftest import DAGS, minimap_cli

OLD = datetime(2020, 1, 1, tzinfo=timezone.utc)
CUT = datetime(2021, 1, 1, tzinfo=timezone.utc)


def _finished_run(store: Store, old: bool) -> str:
    run = api.trigger_file(store, str(DAGS / "lazy.py"))
    api.run_to_end(store, run.run_id)
    if old:
        with store.engine.begin() as conn:
            conn.execute(update(dag_run).where(dag_run.c.run_id == run.run_id).values(created_at=OLD, ended_at=OLD))
    return run.run_id


def _owned(store: Store, run_id: str) -> tuple[int, int, int]:
    with store.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(t).where(t.c.run_id == run_id)).scalar_one()
            for t in (dag_run, task_instance, task_try)
        )


@pytest.fixture
def runs(store: Store) -> dict[str, str]:
    old_a, old_b, recent = _finished_run(store, True), _finished_run(store, True), _finished_run(store, False)
    waiting = api.trigger_file(store, str(DAGS / "lazy.py")).run_id  # queued: nobody drives it
    with store.engine.begin() as conn:
        conn.execute(update(dag_run).where(dag_run.c.run_id == waiting).values(created_at=OLD))
    return {"old_a": old_a, "old_b": old_b, "recent": recent, "waiting": waiting}


def test_dry_run_counts_and_removes_nothing(store: Store, runs: dict[str, str]) -> None:
    before = {k: _owned(store, r) for k, r in runs.items()}
    out = prune(store.engine, CUT, dry_run=True)
    assert out.runs == [runs["old_a"], runs["old_b"]]
    assert out.instances == out.tries == 2 * 12  # 10 mapped instances and 2 downstream, one try each
    assert out.kept_unfinished == [runs["waiting"]]
    assert {k: _owned(store, r) for k, r in runs.items()} == before


def test_prune_removes_old_finished_runs_in_batches_and_keeps_the_rest(store: Store, runs: dict[str, str]) -> None:
    kept = {k: _owned(store, runs[k]) for k in ("recent", "waiting")}
    removed: list[str] = []
    out = prune(store.engine, CUT, batch=3, on_run=removed.append)  # 10 mapped instances: 4 batches
    assert out.runs == removed == [runs["old_a"], runs["old_b"]]
    assert (out.instances, out.tries) == (24, 24)
    assert _owned(store, runs["old_a"]) == _owned(store, runs["old_b"]) == (0, 0, 0)
    assert {k: _owned(store, runs[k]) for k in ("recent", "waiting")} == kept
    assert prune(store.engine, CUT).runs == []  # nothing left to do


def test_a_run_that_is_no_longer_finished_is_left_alone(store: Store, runs: dict[str, str]) -> None:
    with store.engine.begin() as conn:  # as a clear does: the run runs again
        conn.execute(update(dag_run).where(dag_run.c.run_id == runs["old_a"]).values(state=RunState.RUNNING.value))
    before = _owned(store, runs["old_a"])
    assert _delete_run(store.engine, runs["old_a"], 3, Pruned()) is False
    assert _owned(store, runs["old_a"]) == before


def test_the_command_says_what_it_removes(db_url: str, store: Store, runs: dict[str, str]) -> None:
    dry = minimap_cli("db", "prune", "--before", "2021-01-01", "--dry-run", db_url=db_url)
    assert dry.returncode == 0, dry.stderr
    assert "would remove 2 runs finished before 2021-01-01T00:00:00+00:00: 24 instances, 24 tries" in dry.stdout
    assert f"kept 1 older runs that are not finished: {runs['waiting']}" in dry.stdout
    done = minimap_cli("db", "prune", "--before", "2021-01-01", db_url=db_url)
    assert done.returncode == 0, done.stderr
    assert "removed 2 runs" in done.stdout and f"removed run {runs['old_a']}" in done.stderr
    assert _owned(store, runs["old_b"]) == (0, 0, 0) and _owned(store, runs["recent"])[0] == 1


def test_a_bad_date_is_a_usage_error(db_url: str) -> None:
    bad = minimap_cli("db", "prune", "--before", "last tuesday", db_url=db_url)
    assert bad.returncode == 2
    assert "'last tuesday' is not a date" in bad.stderr and "Traceback" not in bad.stderr
