"""The store's contract, on SQLite and on Postgres: what each named operation guarantees, whoever calls it."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from minimap import api
from minimap.execution.scheduler import Scheduler
from minimap.execution.worker import pid_alive
from minimap.states import RunState, TIState
from minimap.store.rows import Claimed, Completion, utcnow
from minimap.store.storage import Store
from tests.conftest import DAGS

CONTRACT = str(DAGS / "contract.py")
HERE = socket.gethostname()


def _queued_wide_run(store: Store) -> str:
    """A started run of `wide` whose 60 instances are queued (one scheduling pass, no worker)."""
    run_id = api.trigger_file(store, CONTRACT, "wide").run_id
    assert Scheduler(store).tick(run_id) is RunState.RUNNING
    assert store.counts(run_id) == {"work": {TIState.QUEUED: 60}}
    return run_id


def _worker(store: Store, host: str, pid: int, name: str) -> str:
    worker_id = f"{host}:{pid}:{name}"
    store.register_worker(worker_id, host, pid)
    return worker_id


def _claim(store: Store, worker_id: str, run_id: str, want: int = 1) -> list[Claimed]:
    host, pid, _ = worker_id.rsplit(":", 2)
    return store.claim(worker_id, host, int(pid), want=want, parallelism=1000, run_id=run_id)


def _dead_pid() -> int:
    """The id of a process of this host that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


# --- expansion ----------------------------------------------------------------------------------


def _squares(store: Store, run_id: str) -> dict[int, TIState]:
    return {i.map_index: i.state for i in store.instances(run_id, "square")}


def test_re_expansion_to_fewer_then_more_items(store: Store, flags: Path) -> None:
    (flags / "n").write_text("4")
    run_id = api.trigger_file(store, CONTRACT, "resize", conf={"flags": str(flags)}).run_id
    assert api.run_to_end(store, run_id) is RunState.SUCCESS
    assert store.instances(run_id, "collect")[0].result == [0, 1, 4, 9]

    (flags / "n").write_text("2")  # fewer: the indexes past the end are removed, the rest run again
    api.clear(store, run_id, ["fetch"], downstream_all=True)
    assert api.run_to_end(store, run_id) is RunState.SUCCESS
    assert _squares(store, run_id) == {0: TIState.SUCCESS, 1: TIState.SUCCESS, 2: TIState.REMOVED, 3: TIState.REMOVED}
    assert store.instances(run_id, "collect")[0].result == [0, 1]

    (flags / "n").write_text("6")  # more: removed indexes come back, new ones are added, results in index order
    api.clear(store, run_id, ["fetch"], downstream_all=True)
    assert api.run_to_end(store, run_id) is RunState.SUCCESS
    assert _squares(store, run_id) == {i: TIState.SUCCESS for i in range(6)}
    assert store.instances(run_id, "collect")[0].result == [0, 1, 4, 9, 16, 25]
    tries = Counter(i.map_index for i in store.tries(run_id, "square"))
    assert tries == {0: 3, 1: 3, 2: 2, 3: 2, 4: 1, 5: 1}  # 2 and 3 did not run while removed


# --- claims -------------------------------------------------------------------------------------


def test_concurrent_claimers_never_get_the_same_instance(store: Store) -> None:
    run_id = _queued_wide_run(store)
    got: list[tuple[str, str, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        worker_id = _worker(store, HERE, 1000 + n, f"t{n}")
        try:
            while claimed := _claim(store, worker_id, run_id, want=3):
                with lock:
                    got.extend(c.key for c in claimed)
        except BaseException as e:  # noqa: BLE001 -- reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(got) == 60 and len(set(got)) == 60
    held = [c.key for n in range(4) for c in store.held_by(f"{HERE}:{1000 + n}:t{n}")]
    assert sorted(held) == sorted(got)  # the database agrees on who holds what


# --- leases -------------------------------------------------------------------------------------


def test_hand_back_queues_the_attempt_without_using_a_try(store: Store) -> None:
    run_id = _queued_wide_run(store)
    worker_id = _worker(store, HERE, 4242, "w")
    (first,) = _claim(store, worker_id, run_id)
    before = store.instances(run_id, "work", map_indexes=[first.map_index])[0]

    assert store.hand_back(worker_id, [first], "stopping: grace period of 30 s over") == 1
    assert store.hand_back(worker_id, [first], "again") == 0  # no longer held: nothing changes

    after = store.instances(run_id, "work", map_indexes=[first.map_index])[0]
    assert after.state is TIState.QUEUED and after.max_tries == before.max_tries + 1
    (t,) = store.tries(run_id, "work", first.map_index)
    assert (t.try_number, t.state, t.error_type) == (1, TIState.FAILED, "Interrupted")
    assert "grace period" in (t.error_message or "")
    assert store.held_by(worker_id) == []


def test_reclaim_lost_finds_a_dead_process_here_and_an_expired_lease_elsewhere(store: Store) -> None:
    run_id = _queued_wide_run(store)
    dead = _worker(store, HERE, _dead_pid(), "dead")
    alive = _worker(store, HERE, __import__("os").getpid(), "alive")
    far = _worker(store, "far-away-host", 7, "far")
    held = {w: _claim(store, w, run_id)[0] for w in (dead, alive, far)}

    found = store.reclaim_lost(3600, HERE, pid_alive)  # long lease: only the dead process here is lost
    assert len(found) == 1 and "is gone" in found[0] and f"[{held[dead].map_index}]" in found[0]

    time.sleep(0.3)
    store.heartbeat(alive)
    found = store.reclaim_lost(0.2, HERE, pid_alive)  # the far host stopped heartbeating 0.3 s ago
    assert len(found) == 1 and "stopped heartbeating" in found[0] and "far-away-host:7" in found[0]

    states = {w: store.instances(run_id, "work", map_indexes=[c.map_index])[0].state for w, c in held.items()}
    assert states[alive] is TIState.RUNNING
    assert states[dead] is not TIState.RUNNING and states[far] is not TIState.RUNNING
    for w in (dead, far):
        (t,) = store.tries(run_id, "work", held[w].map_index)
        assert t.try_number == 1 and t.error_type == "WorkerLost"
    assert store.reclaim_lost(0.2, HERE, pid_alive) == []  # once only


def test_a_report_from_a_worker_whose_lease_was_taken_over_is_ignored(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = _queued_wide_run(store)
    late = _worker(store, "far-away-host", 8, "late")
    (claimed,) = _claim(store, late, run_id)
    time.sleep(0.3)
    assert len(store.reclaim_lost(0.2, HERE, pid_alive)) == 1

    taker = _worker(store, HERE, 4243, "taker")
    retaken = [c for c in _claim(store, taker, run_id, want=60) if c.map_index == claimed.map_index]
    assert retaken and retaken[0].try_number == 2

    with caplog.at_level(logging.WARNING, logger="minimap.store.completions"):
        ended = Completion(claimed, TIState.SUCCESS, utcnow(), result="0")
        assert store.complete(late, [ended]) == 0
    assert f"work[{claimed.map_index}] try 1 ended success on worker {late}" in caplog.text
    assert "ignored" in caplog.text

    now = store.instances(run_id, "work", map_indexes=[claimed.map_index])[0]
    assert (now.state, now.try_number, now.result) == (TIState.RUNNING, 2, None)
    assert claimed.key in [c.key for c in store.held_by(taker)] and store.held_by(late) == []
    (t,) = store.tries(run_id, "work", claimed.map_index)
    assert t.error_type == "WorkerLost"  # the try stays recorded as lost, not as the late success

    assert store.complete(taker, [Completion(retaken[0], TIState.SUCCESS, utcnow(), result="0")]) == 1
    assert [t.state for t in store.tries(run_id, "work", claimed.map_index)] == [TIState.FAILED, TIState.SUCCESS]


def test_a_batch_records_what_the_worker_holds_once_and_ignores_the_rest(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = _queued_wide_run(store)
    me, other = _worker(store, HERE, 4301, "me"), _worker(store, HERE, 4302, "other")
    mine = _claim(store, me, run_id, want=3)
    (theirs,) = _claim(store, other, run_id)
    ends = [Completion(c, TIState.SUCCESS, utcnow(), result=str(c.map_index)) for c in mine]
    stray = Completion(theirs, TIState.SUCCESS, utcnow(), result="x")  # not this worker's attempt
    with caplog.at_level(logging.WARNING, logger="minimap.store.completions"):
        assert store.complete(me, [*ends, ends[0], stray]) == 3  # one twice in the batch, one not held
        assert store.complete(me, ends) == 0  # the same reports again: already recorded
    assert f"work[{theirs.map_index}] try 1 ended success on worker {me}" in caplog.text
    for c in mine:
        (now,) = store.instances(run_id, "work", map_indexes=[c.map_index])
        assert (now.state, now.result) == (TIState.SUCCESS, c.map_index)  # the result is stored as JSON
        assert [t.state for t in store.tries(run_id, "work", c.map_index)] == [TIState.SUCCESS]
    (still,) = store.instances(run_id, "work", map_indexes=[theirs.map_index])
    assert still.state is TIState.RUNNING and store.tries(run_id, "work", theirs.map_index) == []


def test_a_lost_attempt_is_queued_again_with_its_try_given_back_until_three_in_a_row_fail_it(store: Store) -> None:
    run_id = _queued_wide_run(store)
    base = store.instances(run_id, "work", map_indexes=[0])[0].max_tries
    index = None
    for n in range(1, 4):
        dead = _worker(store, HERE, _dead_pid(), f"dead{n}")
        claimed = _claim(store, dead, run_id)[0]
        index = claimed.map_index if index is None else index
        assert (claimed.map_index, claimed.try_number) == (index, n)  # queued again, first in line
        (line,) = store.reclaim_lost(3600, HERE, pid_alive, max_lost=3)
        now = store.instances(run_id, "work", map_indexes=[index])[0]
        if n < 3:
            assert (now.state, now.max_tries) == (TIState.QUEUED, base + n)
            assert f"({n} of 3 lost in a row)" in line
        else:
            assert (now.state, now.max_tries) == (TIState.FAILED, base + 2)
            assert "lost its worker 3 times in a row, so it is failed" in (now.error or "")
    assert [t.error_type for t in store.tries(run_id, "work", index)] == ["WorkerLost"] * 3


# --- pools --------------------------------------------------------------------------------------


def test_concurrent_claimers_never_overfill_a_pool_shared_by_two_runs(store: Store) -> None:
    api.set_pool(store, "db", 4)
    runs = [api.trigger_file(store, str(DAGS / "pooled.py"), dag_id).run_id for dag_id in ("pooled_a", "pooled_b")]
    for run_id in runs:
        Scheduler(store).tick(run_id)
    got: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        worker_id = _worker(store, HERE, 2000 + n, f"p{n}")
        for _ in range(5):  # nothing completes: the pool stays as full as the claims made it
            claimed = store.claim(worker_id, HERE, 2000 + n, want=3, parallelism=1000)
            with lock:
                got.extend(c.key for c in claimed)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(set(got)) == 4  # 12 queued in two runs, 16 worker slots, a pool of 4
    assert {p.name: (p.running, p.queued) for p in api.list_pools(store)}["db"] == (4, 8)


def test_a_claim_between_the_passs_reads_never_finishes_the_run_early(store: Store) -> None:
    """The pass reads the run's counts; a worker claims every queued instance right then (another connection,
    committed). The pass must still see them -- as queued or as running -- and not call the run finished."""
    if not store.is_postgres:
        pytest.skip("SQLite's writer lock makes a pass and a claim one after the other")
    run_id = _queued_wide_run(store)
    taker = _worker(store, HERE, 4401, "between")
    fired: list[int] = []

    def claim_after_the_counts(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not fired and "count(" in statement and "GROUP BY" in statement:
            fired.append(len(_claim(store, taker, run_id, want=60)))

    event.listen(store.engine, "after_cursor_execute", claim_after_the_counts)
    try:
        state = Scheduler(store).tick(run_id)
    finally:
        event.remove(store.engine, "after_cursor_execute", claim_after_the_counts)
    assert fired == [60]
    assert state is RunState.RUNNING and store.run(run_id).state is RunState.RUNNING
    assert store.counts(run_id) == {"work": {TIState.RUNNING: 60}}
