"""The read side (minimap.service.reads) against SQLite and Postgres: pages, sorts, search, counts, logs, waits."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from minimap import service
from minimap.authoring.loader import load_dag
from minimap.exceptions import MinimapError, NotFoundError
from minimap.states import RunState, TIState
from minimap.store.rows import Completion
from minimap.store.storage import Store
from tests.conftest import DAGS

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
N = 25
FAILED = {3, 7}
RUNNING = {20, 21}
QUEUED = {22}
RETRY = {23}
REMOVED = {24}  # ended without ever starting: an end, but no duration


def _row(task_id: str, map_index: int, state: TIState, **kw: Any) -> dict[str, Any]:
    row = {"task_id": task_id, "map_index": map_index, "state": state.value, "try_number": 1, "max_tries": 2,
           "args": None, "label": None, "result": None, "error": None, "started_at": None, "ended_at": None,
           "next_retry_at": None, "worker_id": None, "hostname": None, "pid": None}  # fmt: skip
    return {**row, **kw}


def _work(i: int) -> dict[str, Any]:
    start = T0 + timedelta(seconds=i)
    end = start + timedelta(seconds=(i * 7) % 5)  # durations 0-4 s: many ties, broken by map_index
    label = "Café <b>" if i == 13 else f"Item-{i}"
    args = json.dumps({"kw": {"item": label}})
    if i in FAILED:
        return _row("work", i, TIState.FAILED, label=label, args=args, started_at=start, ended_at=end, error="E: no")
    if i in RUNNING:
        return _row("work", i, TIState.RUNNING, label=label, args=args, started_at=start, worker_id="gone:1:w")
    if i in QUEUED:
        return _row("work", i, TIState.QUEUED, label=label, args=args, try_number=0)
    if i in RETRY:
        later = T0 + timedelta(days=3650)
        return _row("work", i, TIState.UP_FOR_RETRY, label=label, args=args, started_at=start, ended_at=end,
                    next_retry_at=later)  # fmt: skip
    if i in REMOVED:
        return _row("work", i, TIState.REMOVED, label=label, args=args, ended_at=end, try_number=0)
    return _row("work", i, TIState.SUCCESS, label=label, args=args, started_at=start, ended_at=end, result=str(i))


def seed(store: Store, run_id: str = "r1", start: bool = True) -> list[dict[str, Any]]:
    """A run of the `reads` DAG with every state, time and label the tests need, written as the store writes it."""
    dag = load_dag(str(DAGS / "reads.py"))
    work = [_work(i) for i in range(N)]
    rows = [
        _row("items", -1, TIState.SUCCESS, started_at=T0, ended_at=T0 + timedelta(seconds=1)),
        *work,
        _row("total", -1, TIState.SCHEDULED, try_number=0),
    ]
    store.create_run(run_id, "reads", dag.fileloc, json.dumps(dag.snapshot()), {}, rows)
    if start:
        store.start_runs("reads", 16)
    return work


def _expected(work: list[dict[str, Any]], sort: str) -> list[int]:
    """The order a sort must give: values ascending or descending (ties by map_index the same way), then the
    rows without a value, by map_index."""
    key = sort.lstrip("-")

    def value(r: dict[str, Any]) -> Any:
        if key == "index":
            return r["map_index"]
        if key == "end":
            return r["ended_at"]
        return r["ended_at"] - r["started_at"] if r["started_at"] and r["ended_at"] else None

    valued = sorted(((value(r), r["map_index"]) for r in work if value(r) is not None), reverse=sort.startswith("-"))
    return [m for _, m in valued] + sorted(r["map_index"] for r in work if value(r) is None)


def _all_pages(store: Store, limit: int, **kw: Any) -> list[list[int]]:
    pages: list[list[int]] = []
    after = None
    while True:
        page = service.list_instances(store, "r1", "work", after=after, limit=limit, **kw)
        assert len(page.items) <= limit
        pages.append([i.map_index for i in page.items])
        if page.next_after is None:
            return pages
        after = page.next_after
        assert len(pages) <= N, "paging does not end"


@pytest.mark.parametrize("sort", ["index", "-index", "duration", "-duration", "end", "-end"])
def test_keyset_pages_cross_boundaries_in_every_sort(store: Store, sort: str) -> None:
    work = seed(store)
    pages = _all_pages(store, 4, sort=sort)
    assert [m for p in pages for m in p] == _expected(work, sort)
    assert [len(p) for p in pages] == [4] * 6 + [1]


def test_index_order_is_numeric(store: Store) -> None:
    seed(store)
    page = service.list_instances(store, "r1", "work", limit=12)
    assert [i.map_index for i in page.items] == list(range(12))  # 0, 1, 2, ..., 10, 11: not 0, 1, 10, 11, 2


def test_state_filter_pages_and_a_full_last_page_ends_the_listing(store: Store) -> None:
    work = seed(store)
    ended = [TIState.FAILED, TIState.RUNNING, TIState.QUEUED, TIState.UP_FOR_RETRY]
    pages = _all_pages(store, 3, states=ended, sort="-duration")
    chosen = [r for r in work if r["state"] in {s.value for s in ended}]
    assert [m for p in pages for m in p] == _expected(chosen, "-duration")
    exactly = _all_pages(store, 3, states=[TIState.FAILED, TIState.RUNNING, TIState.QUEUED, TIState.REMOVED][:3])
    assert exactly == [[3, 7, 20], [21, 22]]
    two = _all_pages(store, 2, states=[TIState.FAILED, TIState.RUNNING])
    assert two == [[3, 7], [20, 21]]  # a page that ends the listing exactly says so: no empty third page


def test_label_search_ignores_case_and_treats_wildcards_as_text(store: Store) -> None:
    seed(store)

    def found(q: str, **kw: Any) -> list[int]:
        return [m for p in _all_pages(store, 4, q=q, **kw) for m in p]

    assert found("item-1") == [1, 10, 11, 12, 14, 15, 16, 17, 18, 19]
    assert found("ITEM-1", sort="-index") == [19, 18, 17, 16, 15, 14, 12, 11, 10, 1]
    assert found("café") == [13]
    assert found("<b>") == [13]
    assert found("%") == [] and found("_") == []
    assert found("item-2", states=[TIState.RUNNING]) == [20, 21]


def test_cursors_are_checked(store: Store) -> None:
    seed(store)
    cursor = service.list_instances(store, "r1", "work", sort="end", limit=2).next_after
    assert cursor is not None
    with pytest.raises(service.CursorError):
        service.list_instances(store, "r1", "work", sort="index", after=cursor)
    with pytest.raises(service.CursorError):
        service.list_instances(store, "r1", "work", after="not-a-cursor")
    with pytest.raises(MinimapError, match="unknown sort 'size'"):
        service.list_instances(store, "r1", "work", sort="size")
    with pytest.raises(MinimapError, match="unknown sort '--index'"):
        service.list_instances(store, "r1", "work", sort="--index")
    for limit in (0, service.MAX_LIMIT + 1):  # refused, never silently cut
        with pytest.raises(MinimapError, match="a page holds 1 to 1000 rows"):
            service.list_instances(store, "r1", "work", limit=limit)
    with pytest.raises(NotFoundError, match="has no task 'nope'"):
        service.list_instances(store, "r1", "nope")


def test_run_detail_counts_each_task_in_definition_order(store: Store) -> None:
    work = seed(store)
    detail = service.run_detail(store, "r1")
    assert detail.run.state is RunState.RUNNING
    assert [t.task_id for t in detail.tasks] == ["items", "work", "total"]
    items, mapped, total = detail.tasks
    assert mapped.mapped and mapped.expanded and mapped.total == N
    assert mapped.counts == {"success": 18, "failed": 2, "running": 2, "queued": 1, "up_for_retry": 1, "removed": 1}
    assert mapped.first_start == T0
    assert mapped.last_end == max(r["ended_at"] for r in work if r["ended_at"])
    assert mapped.caps == {"max_active_tis_per_dag": None, "max_active_tis_per_dagrun": 2}
    assert mapped.upstream == ["items"]
    assert total.counts == {"scheduled": 1} and total.first_start is None and total.last_end is None
    assert service.task_json(mapped)["counts"]["failed"] == 2
    assert items.total == 1 and not items.mapped


def test_a_mapped_task_not_expanded_yet_says_so(store: Store) -> None:
    dag = load_dag(str(DAGS / "reads.py"))
    rows = [_row(t, -1, TIState.SCHEDULED, try_number=0) for t in ("items", "work", "total")]
    store.create_run("r0", "reads", dag.fileloc, json.dumps(dag.snapshot()), {}, rows)
    work = service.run_detail(store, "r0").tasks[1]
    assert work.mapped and not work.expanded and work.total == 1


def test_runs_page_newest_first_with_counts_and_filters(store: Store) -> None:
    for k in range(3):
        seed(store, f"r{k + 1}", start=False)
    store.start_runs("reads", 1)  # the oldest starts; the others wait
    first = service.list_runs(store, limit=2)
    assert [s.run.run_id for s in first.items] == ["r3", "r2"]
    assert first.items[0].counts["success"] == 19 and first.items[0].counts["scheduled"] == 1
    assert first.next_after is not None
    second = service.list_runs(store, limit=2, after=first.next_after)
    assert [s.run.run_id for s in second.items] == ["r1"] and second.next_after is None
    assert [s.run.run_id for s in service.list_runs(store, state=RunState.RUNNING).items] == ["r1"]
    assert service.list_runs(store, dag_id="other").items == []
    assert set(service.run_json(first.items[0])) == {
        "run_id", "dag_id", "state", "created_at", "started_at", "ended_at", "counts",
        "run_type", "logical_date", "data_interval_start", "data_interval_end",
    }  # fmt: skip
    assert service.latest_run(store).run_id == "r3"


def test_instance_detail_and_why_each_one_waits(store: Store) -> None:
    seed(store)
    seed(store, "r2", start=False)  # created after r1 started: queued behind it
    done = service.instance_detail(store, "r1", "work", 5)
    assert done.instance.state is TIState.SUCCESS and done.waiting_reason is None
    assert done.args == {"item": "Item-5"} and done.result == 5
    assert done.idempotency_key.startswith("reads.work.5.")

    capped = service.instance_detail(store, "r1", "work", 22).waiting_reason
    assert capped is not None and "max_active_tis_per_dagrun=2, 2 running" in capped
    upstream = service.instance_detail(store, "r1", "total", -1).waiting_reason
    assert upstream == "waiting for upstream work (21 of 25 done; 1 queued, 2 running, 1 up_for_retry)"
    lost = service.instance_detail(store, "r1", "work", 20).waiting_reason
    assert lost is not None and "worker gone:1:w, which is not registered" in lost
    retry = service.instance_detail(store, "r1", "work", 23).waiting_reason
    assert retry is not None and retry.startswith("up for retry: the next try is due in")
    queued_run = service.instance_detail(store, "r2", "work", 22).waiting_reason
    assert queued_run == "the run is queued behind 1 earlier run of reads (max_active_runs=16)"

    with pytest.raises(NotFoundError, match="task work has no map index 99: it has map indexes 0–24"):
        service.instance_detail(store, "r1", "work", 99)
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        service.instance_detail(store, "nope", "work", 1)


def test_a_log_pages_backwards_from_its_tail(store: Store) -> None:
    dag = load_dag(str(DAGS / "reads.py"))
    rows = [_row("items", -1, TIState.SUCCESS), _row("work", 0, TIState.QUEUED, try_number=0),
            _row("total", -1, TIState.SCHEDULED, try_number=0)]  # fmt: skip
    store.create_run("r1", "reads", dag.fileloc, json.dumps(dag.snapshot()), {}, rows)
    store.start_runs("reads", 1)
    log = "".join(f"line {k} é\n" for k in range(40))
    store.register_worker("host:1:a", "host", 1)
    store.register_worker("other:2:b", "other", 2)
    (claimed,) = store.claim("host:1:a", "host", 1, want=1, parallelism=8, run_id="r1")
    held = {w.worker_id: w.running for w in service.list_workers(store)}
    assert held == {"host:1:a": [("r1", "work", 0)], "other:2:b": []}
    running = service.instance_detail(store, "r1", "work", 0)
    assert running.worker_id == "host:1:a" and running.waiting_reason is None  # its worker heartbeats: it does not wait
    done = Completion(claimed, TIState.SUCCESS, T0 + timedelta(hours=1), result="0", log=log, log_truncated=True)
    assert store.complete("host:1:a", [done]) == 1

    chunks = []
    before = None
    while before != 0:
        chunk = service.try_log(store, "r1", "work", 0, 1, before=before, size=50)
        assert chunk.total == len(log) and chunk.truncated
        assert chunk.text == log[chunk.start : chunk.start + len(chunk.text)] and len(chunk.text) <= 50
        chunks.append(chunk.text)
        before = chunk.start
    assert "".join(reversed(chunks)) == log
    tail = service.try_log(store, "r1", "work", 0, 1)
    assert tail.text == log and tail.start == 0
    view = service.log_view(store, "r1", "work", 0)
    assert view.text == log and view.truncated and view.attempt.try_number == 1

    with pytest.raises(NotFoundError, match=r"work\[0\] has no try 2; its tries are 1"):
        service.try_log(store, "r1", "work", 0, 2)
    with pytest.raises(NotFoundError, match="has no finished try yet"):
        service.log_view(store, "r1", "total", -1)
    assert all(w.running == [] for w in service.list_workers(store))
