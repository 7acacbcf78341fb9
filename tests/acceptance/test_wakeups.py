"""Daemons wake each other with LISTEN/NOTIFY on Postgres; a lost notification only means polling finds the work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from minimap.states import RunState
from minimap.store import wakeups
from minimap.store.storage import Store
from tests.acceptance.test_daemons import Processes, finished, trigger, wait_for

MINE = "FROM pg_stat_activity WHERE application_name = :a AND datname = current_database()"
LISTENERS = text(f"SELECT count(*) {MINE}")
KILL = text(f"SELECT pg_terminate_backend(pid) {MINE}")


@pytest.fixture
def procs(db_url: str, tmp_path: Path) -> Iterator[Processes]:
    p = Processes(db_url, tmp_path)
    yield p
    p.stop_all()


def _listeners(db_url: str, kill: bool = False) -> int:
    engine = create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return (
                len(conn.execute(KILL, {"a": wakeups.APPLICATION}).all())
                if kill
                else int(conn.execute(LISTENERS, {"a": wakeups.APPLICATION}).scalar_one())
            )
    finally:
        engine.dispose()


def test_a_committed_batch_notifies_and_a_rolled_back_one_does_not(store: Store) -> None:
    listener = wakeups.Listener(store.engine, wakeups.WORK)
    try:
        with store.engine.connect() as conn:
            with conn.begin() as tx:
                wakeups.notify(conn, wakeups.WORK)
                tx.rollback()
            assert listener.wait(0.3) is False  # never committed: nothing arrives (SQLite: nothing ever does)
            with conn.begin():
                wakeups.notify(conn, wakeups.WORK)
        assert listener.wait(30) is store.is_postgres
    finally:
        listener.close()


def _postgres(store: Store) -> None:
    if not store.is_postgres:
        pytest.skip("notifications are a Postgres feature; SQLite daemons poll")


@pytest.mark.slow
def test_with_no_notifications_at_all_daemons_still_finish_the_run(
    store: Store,
    procs: Processes,
    flags: Path,
) -> None:
    _postgres(store)
    run_id = trigger(store, flags, 20, 0.0)
    off = {"MINIMAP_NOTIFY": "0"}  # as if every notification were lost: polling alone finds the work
    procs.start("scheduler", env=off)
    procs.start("worker", "--concurrency", "4", env=off)
    wait_for(finished(store, run_id), 90, "the run to finish by polling", procs)
    assert store.run(run_id).state is RunState.SUCCESS


@pytest.mark.slow
def test_a_lost_listening_connection_is_reopened_and_work_goes_on(
    store: Store,
    procs: Processes,
    flags: Path,
    db_url: str,
) -> None:
    _postgres(store)
    procs.start("scheduler")
    procs.start("worker", "--concurrency", "4")
    wait_for(lambda: _listeners(db_url) == 2, 30, "a scheduler and a worker listening", procs)
    assert _listeners(db_url, kill=True) == 2  # the server drops both listening connections
    run_id = trigger(store, flags, 20, 0.0)
    wait_for(finished(store, run_id), 90, "the run to finish", procs)
    assert store.run(run_id).state is RunState.SUCCESS
    wait_for(lambda: _listeners(db_url) == 2, 30, "both listening again", procs)
