"""What a clear resets: the target, and downstream instances that did not succeed."""

import pytest

from minimap.authoring.dag import DAG
from minimap.authoring.taskflow import task
from minimap.exceptions import ClearError, NotFoundError
from minimap.rules.clearing import Instance, Reset, describe_indexes, max_tries_after_clear, plan, resets, resolve_task
from minimap.snapshot import DagSpec
from minimap.states import TIState

OK, F, UF, R, SK = TIState.SUCCESS, TIState.FAILED, TIState.UPSTREAM_FAILED, TIState.RUNNING, TIState.SKIPPED


def chain() -> DagSpec:
    """fetch -> process (mapped) -> per_item (mapped over process) -> summarize"""
    with DAG("d") as dag:

        @task
        def fetch():
            return []

        @task
        def process(x):
            return x

        @task(trigger_rule="all_done")
        def per_item(y):
            return y

        @task
        def summarize(r):
            return r

        summarize(per_item.expand(y=process.expand(x=fetch())))
    return DagSpec.from_json(dag.snapshot())


def inst(task_id: str, states: list[TIState]) -> list[Instance]:
    if len(states) == 1 and task_id in ("fetch", "summarize"):
        return [Instance(task_id, -1, states[0])]
    return [Instance(task_id, i, s) for i, s in enumerate(states)]


def keys(found: list[Instance]) -> list[tuple[str, int]]:
    return [(i.task_id, i.map_index) for i in found]


def test_clears_the_target_and_the_failed_downstream_only() -> None:
    found = inst("fetch", [OK]) + inst("process", [OK, F, OK]) + inst("per_item", [OK, F]) + inst("summarize", [UF])
    reset = plan(chain(), found, [("process", 1)])
    assert keys(reset) == [("process", 1), ("per_item", 1), ("summarize", -1)]


def test_downstream_all_resets_what_succeeded_too() -> None:
    found = inst("fetch", [OK]) + inst("process", [OK, F]) + inst("per_item", [OK, F]) + inst("summarize", [UF])
    reset = plan(chain(), found, [("process", 1)], downstream_all=True)
    assert keys(reset) == [("process", 1), ("per_item", 0), ("per_item", 1), ("summarize", -1)]


def test_only_failed_among_every_index() -> None:
    found = inst("fetch", [OK]) + inst("process", [OK, F, OK, F]) + inst("summarize", [UF])
    reset = plan(chain(), found, [("process", None)], only_states=[F])
    assert keys(reset) == [("process", 1), ("process", 3), ("summarize", -1)]


def test_a_running_target_is_refused() -> None:
    with pytest.raises(ClearError, match=r"process\[1\] is running right now"):
        plan(chain(), inst("process", [OK, R]), [("process", 1)])


def test_an_unknown_index_names_the_ones_that_exist() -> None:
    with pytest.raises(NotFoundError, match="task process has no map index 12: it has map indexes 0–11"):
        plan(chain(), inst("process", [OK] * 12), [("process", 12)])


def test_an_unknown_task_names_the_tasks() -> None:
    with pytest.raises(NotFoundError, match="its tasks are fetch, process, per_item, summarize"):
        plan(chain(), [], [("nope", 1)])


def test_the_task_may_be_left_out_when_one_mapped_task_has_the_index() -> None:
    found = inst("fetch", [OK]) + inst("process", [OK] * 12) + inst("per_item", [UF])
    assert resolve_task(chain(), found, [10]) == "process"
    with pytest.raises(ClearError, match="several tasks"):
        resolve_task(chain(), inst("process", [OK, OK]) + inst("per_item", [OK, OK]), [1])


@pytest.mark.parametrize(
    ("indexes", "text"), [([0, 1, 2, 3], "map indexes 0–3"), ([4], "map index 4"), ([0, 2], "map indexes 0, 2")]
)
def test_describe_indexes(indexes: list[int], text: str) -> None:
    assert describe_indexes(indexes) == text


def test_resets_group_by_task_with_the_tasks_fresh_tries() -> None:
    found = inst("fetch", [OK]) + inst("process", [OK, F, OK]) + inst("per_item", [OK, F]) + inst("summarize", [UF])
    chosen = plan(chain(), found, [("process", 1)])
    assert resets(chain(), chosen) == [
        Reset("process", (1,), 1),
        Reset("per_item", (1,), 1),
        Reset("summarize", (-1,), 1),
    ]


def test_a_cleared_instance_gets_its_tasks_tries_again_on_top_of_those_made() -> None:
    assert max_tries_after_clear(try_number=3, fresh_tries=2) == 5
    assert max_tries_after_clear(try_number=0, fresh_tries=1) == 1
