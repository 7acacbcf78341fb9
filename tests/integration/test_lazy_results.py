"""A mapped task's whole output reaches its downstream task as a sequence read page by page (both backends)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from minimap import api
from minimap.exceptions import DatabaseError
from minimap.states import TIState
from minimap.store import xcom
from minimap.store.storage import Store
from minimap.store.tables import task_instance as ti
from minimap.store.xcom import LazyResults
from tests.conftest import DAGS


def _run(store: Store) -> str:
    run = api.trigger_file(store, str(DAGS / "lazy.py"))
    api.run_to_end(store, run.run_id)
    return run.run_id


def test_a_downstream_task_receives_a_lazy_sequence_of_the_mapped_results(store: Store) -> None:
    run_id = _run(store)
    expected = [x for x in range(10) if x % 3]
    seen = store.instances(run_id, "inspect")[0]
    assert seen.state is TIState.SUCCESS, seen.error
    assert seen.result == {"type": "LazyResults", "len": len(expected), "items": expected, "first": 1, "last": 8,
                           "slice": [2, 4], "equal": True, "label": "kept"}  # fmt: skip
    assert store.instances(run_id, "passthrough")[0].result == expected
    # the stored arguments hold a reference, not the results
    with store.engine.connect() as conn:
        args = conn.execute(select(ti.c.args).where(ti.c.run_id == run_id, ti.c.task_id == "inspect")).scalar_one()
    assert json.loads(args) == {"kw": {"label": "kept"}, "lazy": {"results": "maybe"}}


def test_pages_indexing_and_slices_read_the_same_items_as_a_list(
    store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _run(store)
    expected = [x for x in range(10) if x % 3]
    lazy = LazyResults(db_url, run_id, "maybe", page=2)  # 3 full pages and a short one
    try:
        assert len(lazy) == len(expected)
        assert list(lazy) == expected
        assert [lazy[i] for i in range(len(lazy))] == expected
        assert [lazy[-i] for i in range(1, len(lazy) + 1)] == expected[::-1]
        assert lazy[1:6:2] == expected[1:6:2]
        assert lazy == expected and lazy != expected[:-1]
        assert 7 in lazy and 3 not in lazy
        assert repr(lazy) == repr(expected)  # a short one prints as the list it stands for (a task's log reads right)
        monkeypatch.setattr(xcom, "SHOWN", 2)
        assert repr(lazy) == "LazyResults(task 'maybe', 6 results: [1, 2, 4] ...)"
        with pytest.raises(IndexError, match="out of range: task maybe has 6 results"):
            lazy[6]
    finally:
        lazy.close()
    assert list(LazyResults(db_url, run_id, "no_such_task")) == []


def test_a_database_that_is_gone_is_one_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lazy = LazyResults(f"sqlite:///{tmp_path}/missing/x.db", "r", "t")
    with pytest.raises(DatabaseError, match="cannot read the results of task t"):
        len(lazy)
