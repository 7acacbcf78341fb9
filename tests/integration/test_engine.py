"""The engine end to end, in-process, on SQLite and on Postgres."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from minimap import api
from minimap.states import RunState, TIState
from minimap.store.rows import InstanceRow
from minimap.store.storage import Store
from tests.conftest import DAGS, ledger
from tests.dags.mapping import AWKWARD

MAPPING = str(DAGS / "mapping.py")


def run_dag(
    store: Store, dag_id: str, path: str = MAPPING, conf: dict[str, Any] | None = None, workers: int | None = None
):  # type: ignore[no-untyped-def]
    created = api.trigger_file(store, path, dag_id, conf)
    state = api.run_to_end(store, created.run_id, workers)
    rows = {(i.task_id, i.map_index): i for i in api.instances(store, created.run_id)}
    return created.run_id, state, rows


def results(rows: dict[tuple[str, int], InstanceRow], task_id: str) -> list[Any]:
    return [r.result for (t, _), r in sorted(rows.items()) if t == task_id]


def states(rows: dict[tuple[str, int], InstanceRow], task_id: str) -> list[TIState]:
    return [r.state for (t, _), r in sorted(rows.items()) if t == task_id]


def test_cross_product_in_airflow_order(store: Store) -> None:
    _, state, rows = run_dag(store, "cross")
    assert state is RunState.SUCCESS
    assert rows["collect", -1].result == ["1a", "1b", "1c", "2a", "2b", "2c"]


def test_partial_with_expand_kwargs(store: Store) -> None:
    _, state, rows = run_dag(store, "partial_kwargs")
    assert state is RunState.SUCCESS
    assert rows["collect", -1].result == [11, 17]


def test_zero_length_skips_the_task_and_what_waits_on_it(store: Store) -> None:
    _, state, rows = run_dag(store, "zero")
    assert state is RunState.SUCCESS
    assert rows["ident", -1].state is TIState.SKIPPED
    assert rows["after", -1].state is TIState.SKIPPED


def test_arguments_with_tabs_newlines_backslashes_and_none_arrive_as_written(store: Store) -> None:
    _, state, rows = run_dag(store, "awkward")  # expanded by COPY text on Postgres, executemany on SQLite
    assert state is RunState.SUCCESS
    assert results(rows, "ident") == AWKWARD
    assert rows["collect", -1].result == [v for v in AWKWARD if v is not None]  # as Airflow: a None result is left out


def test_a_dict_expands_to_key_value_pairs(store: Store) -> None:
    _, _, rows = run_dag(store, "dict_expand")
    assert rows["collect", -1].result == ["a=1", "b=2"]


def test_map_zip_concat(store: Store) -> None:
    _, state, rows = run_dag(store, "transforms")
    assert state is RunState.SUCCESS
    assert rows["doubled", -1].result == [2, 4, 6]
    assert rows["zipped", -1].result == [[1, "x"], [2, "y"]]
    assert rows["zipped_long", -1].result == [[1, "x"], [2, "y"], [3, "-"]]
    assert rows["chained", -1].result == [1, 2, 3, "x", "y"]
    assert rows["whole", -1].result == [2, 4, 6]


def test_mapping_over_a_mapped_output_drops_none_results(store: Store) -> None:
    _, state, rows = run_dag(store, "mapped_over_mapped")
    assert state is RunState.SUCCESS
    assert results(rows, "first") == [10, None, 30]
    assert results(rows, "second") == [11, 31]  # one fewer instance: first[1] returned None
    assert rows["collect", -1].result == [11, 31]


def test_all_done_receives_only_the_results_that_exist(store: Store) -> None:
    _, state, rows = run_dag(store, "all_done")
    assert states(rows, "maybe") == [TIState.SUCCESS, TIState.FAILED, TIState.SUCCESS]
    assert rows["collect", -1].result == [0, 2]
    assert state is RunState.SUCCESS  # the leaf succeeded


def test_retries_count_tries_per_map_index_and_fail_now_does_not_retry(store: Store) -> None:
    run_id, state, rows = run_dag(store, "retries")
    assert state is RunState.FAILED
    assert [(r.state, r.try_number) for r in (rows["flaky", 0], rows["flaky", 1])] == [(TIState.SUCCESS, 2)] * 2
    assert (rows["hopeless", -1].state, rows["hopeless", -1].try_number) == (TIState.FAILED, 1)
    tries = store.tries(run_id, "flaky", 0)
    assert [(t.try_number, t.state, t.error_type) for t in tries] == [
        (1, TIState.FAILED, "RuntimeError"),
        (2, TIState.SUCCESS, None),
    ]
    assert "first try of 1 fails" in (tries[0].log or "")


def test_execution_timeout_kills_the_task_process_not_the_worker(store: Store) -> None:
    _, _, rows = run_dag(store, "timeout")
    assert rows["slow", 0].state is TIState.FAILED
    assert "execution_timeout of 1s exceeded" in (rows["slow", 0].error or "")
    assert rows["slow", 1].state is TIState.SUCCESS


def test_a_task_that_kills_its_process_fails_that_attempt_only(store: Store) -> None:
    _, state, rows = run_dag(store, "crash")
    assert states(rows, "die") == [TIState.SUCCESS, TIState.FAILED, TIState.SUCCESS]
    assert "exited with code 3" in (rows["die", 1].error or "")
    assert state is RunState.FAILED


def test_a_result_json_cannot_hold_fails_naming_task_index_and_type(store: Store) -> None:
    _, _, rows = run_dag(store, "not_json")
    assert rows["odd", 0].state is TIState.SUCCESS
    assert rows["odd", 1].state is TIState.FAILED
    assert "task odd[1] returned a set that cannot be stored as JSON" in (rows["odd", 1].error or "")


def test_the_producer_fails_when_its_output_cannot_be_mapped(store: Store) -> None:
    _, state, rows = run_dag(store, "too_long")
    assert rows["many", -1].state is TIState.FAILED
    assert "5 items to map over, more than max_map_length=3" in (rows["many", -1].error or "")
    assert rows["scalar", -1].state is TIState.FAILED
    assert "returned a int, but a downstream task maps over it" in (rows["scalar", -1].error or "")
    assert rows["ident", -1].state is TIState.UPSTREAM_FAILED
    assert state is RunState.FAILED


def test_skips_propagate_as_airflow_does(store: Store) -> None:
    _, state, rows = run_dag(store, "skips")
    assert rows["skipper", -1].state is TIState.SKIPPED
    assert rows["waits", -1].state is TIState.SKIPPED
    assert rows["tolerant", -1].state is TIState.SUCCESS
    assert state is RunState.SUCCESS


def test_literal_mappings_are_expanded_when_the_run_is_created(store: Store) -> None:
    created = api.trigger_file(store, MAPPING, "literal")
    rows = store.instances(created.run_id, "ident")
    assert [(r.map_index, r.state) for r in rows] == [(i, TIState.SCHEDULED) for i in range(3)]


def test_shipping_story_clear_one_index(store: Store, flags: Path) -> None:
    """The product's reason to exist: item K fails, clear index 10 alone, nothing is sent twice."""
    (flags / "fail-K").touch()
    path, conf = str(DAGS / "shipping_flags.py"), {"flags": str(flags)}
    run_id, state, rows = run_dag(store, None, path, conf)  # type: ignore[arg-type]
    assert state is RunState.FAILED
    assert rows["send", 10].state is TIState.FAILED and rows["send", 10].label == "K"
    assert rows["summarize", -1].state is TIState.UPSTREAM_FAILED
    assert len(ledger(flags)) == 11

    (flags / "fail-K").unlink()
    reset = api.clear(store, run_id, [("send", 10)])
    assert [(i.task_id, i.map_index) for i in reset] == [("send", 10), ("summarize", -1)]
    assert api.run_to_end(store, run_id) is RunState.SUCCESS

    sent = [line for line in ledger(flags) if line.startswith("sent")]
    assert len(sent) == 12  # 12 in all, not 23
    assert ledger(flags)[-1] == "summary " + ",".join(f"done_{c}" for c in "ABCDEFGHIJKL")
    after = {(i.task_id, i.map_index): i for i in api.instances(store, run_id)}
    assert after["send", 10].try_number == 2
    assert all(after["send", i].try_number == 1 for i in range(12) if i != 10)


def test_clear_dry_run_and_errors_change_nothing(store: Store, flags: Path) -> None:
    (flags / "fail-B").touch()
    run_id, _, before = run_dag(store, None, str(DAGS / "shipping_flags.py"), {"flags": str(flags)})  # type: ignore[arg-type]
    reset = api.clear(store, run_id, [("send", 1)], dry_run=True)
    assert len(reset) == 2
    for bad in ([("send", 12)], [("nope", 1)]):
        with pytest.raises(api.NotFoundError):
            api.clear(store, run_id, bad)  # type: ignore[arg-type]
    after = {(i.task_id, i.map_index): i for i in api.instances(store, run_id)}
    assert after == before
    assert store.run(run_id).state is RunState.FAILED


def test_the_concurrency_cap_holds_measured_from_recorded_times(store: Store) -> None:
    run_id, state, rows = run_dag(store, "caps", str(DAGS / "caps.py"), workers=6)
    assert state is RunState.SUCCESS
    assert max_concurrent(list(rows.values())) == 3


def max_concurrent(instances: list[InstanceRow]) -> int:
    """The most instances whose recorded [start, end] intervals overlap at one instant."""
    events = []
    for i in instances:
        assert i.started_at is not None and i.ended_at is not None
        events += [(i.started_at, 1), (i.ended_at, -1)]
    running = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        running += delta
        peak = max(peak, running)
    return peak


def test_a_run_queued_behind_max_active_runs_says_why(
    store: Store, flags: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from minimap.execution.runner import explain_queued

    path, conf = str(DAGS / "shipping_flags.py"), {"flags": str(flags)}  # max_active_runs=1
    first = api.trigger_file(store, path, conf=conf)
    second = api.trigger_file(store, path, conf=conf)
    store.start_runs("shipping_flags", 1)
    assert (store.run(first.run_id).state, store.run(second.run_id).state) == (RunState.RUNNING, RunState.QUEUED)
    explain_queued(store, second.run_id)
    assert f"max_active_runs=1 and these come first: {first.run_id} (running)" in caplog.text
    assert f"minimap resume --run-id {first.run_id}" in caplog.text
