"""Upstream results read from a task process (`ti.xcom_pull`): its own short-lived connection, read only."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from minimap.exceptions import DatabaseError
from minimap.states import TIState
from minimap.store.engine import READ_ONLY, make_engine, mask, short
from minimap.store.rows import decode
from minimap.store.tables import task_instance as ti


def failed_indexes(url: str, run_id: str, task_ids: list[str]) -> dict[str, list[int]]:
    """task_id -> the map indexes of its instances that ended failed, in order (an empty list when none)."""
    # the primary key (run_id, task_id, map_index) serves it
    q = (
        select(ti.c.task_id, ti.c.map_index)
        .where(ti.c.run_id == run_id, ti.c.task_id.in_(task_ids), ti.c.state == TIState.FAILED.value)
        .order_by(ti.c.task_id, ti.c.map_index)
    )
    found: dict[str, list[int]] = {t: [] for t in task_ids}
    for task_id, map_index in _read(url, q):
        found[task_id].append(map_index)
    return found


def failed_lanes(url: str, run_id: str, steps: list[str]) -> list[int]:
    """The lanes of a mapped group (its steps' task ids) with a step failed or upstream_failed, in order."""
    # ix_task_instance_run_task_state_times: (run_id, task_id, state, map_index) from the index alone
    q = (
        select(ti.c.map_index)
        .where(
            ti.c.run_id == run_id,
            ti.c.task_id.in_(steps),
            ti.c.map_index >= 0,
            ti.c.state.in_([TIState.FAILED.value, TIState.UPSTREAM_FAILED.value]),
        )
        .group_by(ti.c.map_index)
        .order_by(ti.c.map_index)
    )
    return [r.map_index for r in _read(url, q)]


def _read(url: str, q: Any) -> list[Any]:
    # An engine per read, closed after it: pulls are rare, and an idle pooled connection in every task
    # process of every worker would add up to more than Postgres allows.
    engine = make_engine(url)
    try:
        # a read-only connection: on SQLite a deferred transaction, which neither waits for nor blocks a claim
        with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            return list(conn.execute(q))
    except SQLAlchemyError as e:
        raise DatabaseError(f"cannot read results from {mask(url)}: {short(e)}") from None
    finally:
        engine.dispose()


def successful_results(url: str, run_id: str, task_id: str, map_indexes: list[int] | None) -> list[tuple[int, Any]]:
    """(map_index, result) of the instances of `task_id` that succeeded, by map_index (all of them if None)."""
    # results_of_task: the primary key (run_id, task_id, map_index) serves it; no lock, a plain read
    q = (
        select(ti.c.map_index, ti.c.result)
        .where(ti.c.run_id == run_id, ti.c.task_id == task_id, ti.c.state == TIState.SUCCESS.value)
        .order_by(ti.c.map_index)
    )
    if map_indexes is not None:
        q = q.where(ti.c.map_index.in_(map_indexes))
    return [(r.map_index, decode(r.result)) for r in _read(url, q)]


PAGE = 5_000  # results read per query by a lazy sequence
SHOWN = 100  # a lazy sequence of at most this many results prints as the list it stands for


class LazyResults(Sequence[Any]):
    """A mapped task's results as its downstream task receives them: its instances that succeeded with a result,
    by map_index, read page by page (as Airflow's LazyXComSequence), so that a million of them never sit in memory.

    `len()`, iteration, indexing and slicing (a slice is a list); equal to a list with the same items. The engine
    is opened at the first read and closed by `close()` (the task process calls it when the attempt ends).
    """

    def __init__(self, url: str, run_id: str, task_id: str, page: int = PAGE) -> None:
        self.url, self.run_id, self.task_id, self.page = url, run_id, task_id, page
        self._engine: Engine | None = None
        self._len: int | None = None
        self._cached: tuple[int, list[Any]] = (0, [])  # (position of the first item, a page of items)

    def __repr__(self) -> str:
        """Printed as the list it stands for while that is short (a task's log reads as it would with a list);
        a long one as its size, never read whole to be printed."""
        n = len(self)
        if n <= SHOWN:
            return repr(list(self))
        return f"LazyResults(task {self.task_id!r}, {n} results: {self[:3]!r:.200} ...)"

    def _rows(self, q: Any) -> list[Any]:
        q = q.where(
            ti.c.run_id == self.run_id,
            ti.c.task_id == self.task_id,
            ti.c.state == TIState.SUCCESS.value,
            ti.c.result.is_not(None),
        )
        try:
            if self._engine is None:
                self._engine = make_engine(self.url)
            with self._engine.connect().execution_options(**{READ_ONLY: True}) as conn:
                return list(conn.execute(q))
        except SQLAlchemyError as e:
            where = f"cannot read the results of task {self.task_id} from {mask(self.url)}"
            raise DatabaseError(f"{where}: {short(e)}") from None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __len__(self) -> int:
        if self._len is None:
            self._len = int(self._rows(select(func.count()).select_from(ti))[0][0])
        return self._len

    def __iter__(self) -> Iterator[Any]:
        last = -1
        while True:  # keyset pages: each query starts after the last map_index read, so none costs more than a page
            q = select(ti.c.map_index, ti.c.result).where(ti.c.map_index > last).order_by(ti.c.map_index)
            rows = self._rows(q.limit(self.page))
            for r in rows:
                yield decode(r.result)
            if len(rows) < self.page:
                return
            last = rows[-1].map_index

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        position = index + n if index < 0 else index
        if not 0 <= position < n:
            raise IndexError(f"index {index} out of range: task {self.task_id} has {n} results")
        start, items = self._cached
        if not start <= position < start + len(items):
            start = position - position % self.page
            q = select(ti.c.result).order_by(ti.c.map_index).offset(start).limit(self.page)
            items = [decode(r.result) for r in self._rows(q)]
            self._cached = (start, items)
        return items[position - start]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, LazyResults)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]
