"""Pools and priority weights through the real `minimap` command, on SQLite and Postgres."""

from __future__ import annotations

import json

import pytest

from minimap import service
from minimap.execution.scheduler import Scheduler
from minimap.states import RunState, TIState
from minimap.store.storage import Store
from tests.acceptance.test_cli import one_line_error
from tests.acceptance.test_daemons import Processes, finished, procs, wait_for  # noqa: F401 -- fixture
from tests.conftest import DAGS, minimap_cli
from tests.integration.test_engine import max_concurrent

POOLED = str(DAGS / "pooled.py")
PRIORITIES = str(DAGS / "priorities.py")


def pools(db_url: str) -> dict[str, dict[str, object]]:
    proc = minimap_cli("pools", "list", "--json", db_url=db_url)
    assert proc.returncode == 0, proc.stderr
    return {p["name"]: p for p in json.loads(proc.stdout)}


def test_pools_are_set_listed_and_deleted(db_url: str) -> None:
    assert pools(db_url) == {
        "default_pool": {"name": "default_pool", "slots": 128, "description": "Default pool", "running": 0, "queued": 0}
    }
    made = minimap_cli("pools", "set", "db", "2", "--description", "the orders database", db_url=db_url)
    assert (made.returncode, made.stdout) == (0, "pool db: created with 2 slots\n")
    assert minimap_cli("pools", "set", "db", "3", db_url=db_url).stdout == "pool db: now 3 slots\n"
    assert minimap_cli("pools", "set", "default_pool", "8", db_url=db_url).returncode == 0
    listed = minimap_cli("pools", "list", db_url=db_url).stdout.splitlines()
    assert listed[0].split() == ["pool", "slots", "running", "queued", "description"]
    assert listed[1].split() == ["db", "3", "0", "0", "the", "orders", "database"]  # the description is kept
    assert listed[2].split()[:2] == ["default_pool", "8"]
    refused = minimap_cli("pools", "delete", "default_pool", db_url=db_url)
    assert refused.returncode == 2 and "default_pool cannot be deleted" in one_line_error(refused)
    unknown = minimap_cli("pools", "delete", "nope", db_url=db_url)
    assert unknown.returncode == 2 and "no pool 'nope'" in one_line_error(unknown)
    assert minimap_cli("pools", "delete", "db", db_url=db_url).stdout == "pool db: deleted\n"
    assert set(pools(db_url)) == {"default_pool"}


def test_a_run_naming_a_missing_pool_is_refused_and_a_pool_in_use_is_not_deleted(db_url: str, store: Store) -> None:
    missing = minimap_cli("trigger", POOLED, "--dag-id", "pooled_a", db_url=db_url)
    assert missing.returncode == 2
    assert one_line_error(missing) == (
        "error: task work of DAG pooled_a uses pool 'db', which does not exist: create it with "
        "`minimap pools set db SLOTS`"
    )
    assert store.runs() == []  # nothing written
    minimap_cli("pools", "set", "db", "2", db_url=db_url)
    made = minimap_cli("trigger", POOLED, "--dag-id", "pooled_a", db_url=db_url)
    assert made.returncode == 0, made.stderr
    assert pools(db_url)["db"]["queued"] == 0  # its instances wait for a scheduler, not for a slot yet
    in_use = minimap_cli("pools", "delete", "db", db_url=db_url)
    assert in_use.returncode == 2
    assert "pool 'db' is used by 6 unfinished instances (run manual__" in one_line_error(in_use)


@pytest.mark.slow
def test_a_pool_of_2_shared_by_two_runs_on_two_workers_never_runs_more_than_2(
    db_url: str,
    store: Store,
    procs: Processes,  # noqa: F811
) -> None:
    assert minimap_cli("pools", "set", "db", "2", db_url=db_url).returncode == 0
    runs = []
    for dag_id in ("pooled_a", "pooled_b"):
        proc = minimap_cli("trigger", POOLED, "--dag-id", dag_id, "--conf", '{"sleep": 0.3}', db_url=db_url)
        assert proc.returncode == 0, proc.stderr
        runs.append(store.latest_run(dag_id).run_id)
    procs.start("scheduler")
    procs.start("worker", "--concurrency", "4")
    procs.start("worker", "--concurrency", "4")
    for run_id in runs:
        wait_for(finished(store, run_id), 90, "the run to finish", procs)
    work = [i for r in runs for i in store.instances(r, "work")]
    assert [store.run(r).state for r in runs] == [RunState.SUCCESS] * 2
    assert len(work) == 12 and all(i.state is TIState.SUCCESS for i in work)
    assert max_concurrent(work) == 2  # 8 worker slots and max_active_tasks=16 per run: the pool is the cap
    assert pools(db_url)["db"] == {"name": "db", "slots": 2, "description": None, "running": 0, "queued": 0}


def test_higher_priority_weight_is_claimed_first(db_url: str, store: Store) -> None:
    proc = minimap_cli("run", PRIORITIES, "--workers", "1", db_url=db_url)
    assert proc.returncode == 0, proc.stderr
    run_id = store.latest_run().run_id
    high, low = store.instances(run_id, "z_high"), store.instances(run_id, "a_low")
    assert len(high) == len(low) == 4
    assert max(i.started_at for i in high if i.started_at) < min(i.started_at for i in low if i.started_at)


def test_an_instance_waiting_for_its_pool_says_why(db_url: str, store: Store) -> None:
    minimap_cli("pools", "set", "db", "0", db_url=db_url)  # 0 slots: the pool is held, its instances wait
    assert minimap_cli("trigger", POOLED, "--dag-id", "pooled_a", db_url=db_url).returncode == 0
    run_id = store.latest_run().run_id
    Scheduler(store).tick(run_id)
    assert pools(db_url)["db"]["queued"] == 6
    detail = service.instance_detail(store, run_id, "work", 0)
    assert (
        detail.waiting_reason
        == "at the pool's cap: pool 'db' has 0 slots, 0 taken by running instances, and this one takes 1"
    )
    minimap_cli("pools", "set", "db", "1", db_url=db_url)
    done = minimap_cli("resume", "--run-id", run_id, db_url=db_url)
    assert done.returncode == 0, done.stderr
    assert max_concurrent(store.instances(run_id, "work")) == 1
