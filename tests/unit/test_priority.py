"""Airflow's priority weights and weight rules, as the claim orders by them."""

from minimap.authoring.dag import DAG
from minimap.authoring.taskflow import task
from minimap.rules.priority import claim_fields, effective_weights
from minimap.snapshot import DagSpec


def chain_spec(rule: str) -> DagSpec:
    with DAG("d") as dag:

        @task(priority_weight=1, weight_rule=rule)
        def a():
            return 1

        @task(priority_weight=2, weight_rule=rule)
        def b(x):
            return x

        @task(priority_weight=4, weight_rule=rule)
        def c(x):
            return x

        @task(priority_weight=8, weight_rule=rule, pool="db", pool_slots=2)
        def d(x, y):
            return x

        first = a()
        d(b(first), c(first))
    return DagSpec.from_json(dag.snapshot())


def test_downstream_is_airflows_default_and_counts_every_task_below_once() -> None:
    assert effective_weights(chain_spec("downstream")) == {"a": 15, "b": 10, "c": 12, "d": 8}


def test_upstream_and_absolute() -> None:
    assert effective_weights(chain_spec("upstream")) == {"a": 1, "b": 3, "c": 5, "d": 15}
    assert effective_weights(chain_spec("absolute")) == {"a": 1, "b": 2, "c": 4, "d": 8}


def test_each_instance_row_carries_its_pool_slots_and_weight() -> None:
    fields = claim_fields(chain_spec("downstream"))
    assert fields["d"] == {"pool": "db", "pool_slots": 2, "priority_weight": 8}
    assert fields["a"] == {"pool": "default_pool", "pool_slots": 1, "priority_weight": 15}
