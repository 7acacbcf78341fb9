"""Every cap, counted across runs and tasks."""

from minimap.authoring.dag import DAG
from minimap.authoring.taskflow import task
from minimap.rules.claims import Slot, pick
from minimap.snapshot import DagSpec


def spec(max_active_tasks: int = 16, per_dag: int | None = None, per_run: int | None = None) -> DagSpec:
    with DAG("d", max_active_tasks=max_active_tasks) as dag:

        @task(max_active_tis_per_dag=per_dag, max_active_tis_per_dagrun=per_run)
        def a(x):
            return x

        @task
        def b(x):
            return x

        a.expand(x=[1])
        b.expand(x=[1])
    return DagSpec.from_json(dag.snapshot())


def slots(run: str, task_id: str, n: int, start: int = 0) -> list[Slot]:
    return [Slot(run, "d", task_id, i) for i in range(start, start + n)]


def test_max_active_tasks_counts_what_already_runs() -> None:
    specs = {"r1": spec(max_active_tasks=3)}
    chosen = pick(slots("r1", "a", 5, 2), slots("r1", "a", 2), specs, want=10, parallelism=32)
    assert len(chosen) == 1


def test_parallelism_caps_everything() -> None:
    specs = {"r1": spec(), "r2": spec()}
    chosen = pick(slots("r1", "a", 5) + slots("r2", "a", 5), [], specs, want=10, parallelism=4)
    assert len(chosen) == 4


def test_max_active_tis_per_dag_spans_runs_but_not_other_tasks() -> None:
    specs = {"r1": spec(per_dag=2), "r2": spec(per_dag=2)}
    chosen = pick(slots("r2", "a", 3) + slots("r2", "b", 3), slots("r1", "a", 1), specs, want=10, parallelism=32)
    assert [(c.task_id, c.map_index) for c in chosen] == [("a", 0), ("b", 0), ("b", 1), ("b", 2)]


def test_max_active_tis_per_dagrun_is_per_run() -> None:
    specs = {"r1": spec(per_run=1), "r2": spec(per_run=1)}
    chosen = pick(slots("r1", "a", 3) + slots("r2", "a", 3), [], specs, want=10, parallelism=32)
    assert [(c.run_id, c.map_index) for c in chosen] == [("r1", 0), ("r2", 0)]


def test_want_limits_the_batch() -> None:
    assert len(pick(slots("r1", "b", 9), [], {"r1": spec()}, want=2, parallelism=32)) == 2


def pooled(run: str, task_id: str, n: int, pool: str = "db", pool_slots: int = 1, start: int = 0) -> list[Slot]:
    return [Slot(run, "d", task_id, i, pool, pool_slots) for i in range(start, start + n)]


def test_a_pool_caps_slots_across_runs_and_tasks() -> None:
    specs = {"r1": spec(), "r2": spec()}
    running = pooled("r1", "a", 1)
    candidates = pooled("r2", "a", 3) + pooled("r2", "b", 3) + slots("r2", "b", 2, start=3)
    chosen = pick(candidates, running, specs, want=10, parallelism=32, pools={"db": 3, "default_pool": 128})
    assert [(c.task_id, c.map_index, c.pool) for c in chosen] == [
        ("a", 0, "db"), ("a", 1, "db"), ("b", 3, "default_pool"), ("b", 4, "default_pool"),
    ]  # fmt: skip


def test_pool_slots_count_and_a_smaller_instance_may_pass_a_larger_one() -> None:
    specs = {"r1": spec()}
    running = pooled("r1", "a", 1, pool_slots=2)  # 2 of 4 taken
    candidates = pooled("r1", "a", 1, pool_slots=3, start=1) + pooled("r1", "b", 3, pool_slots=1)
    chosen = pick(candidates, running, specs, want=10, parallelism=32, pools={"db": 4})
    assert [(c.task_id, c.map_index) for c in chosen] == [("b", 0), ("b", 1)]


def test_an_instance_of_a_missing_pool_is_not_claimed() -> None:
    chosen = pick(pooled("r1", "a", 2, pool="gone"), [], {"r1": spec()}, want=10, parallelism=32, pools={"db": 4})
    assert chosen == []
