"""Orders as lanes of a mapped task group: validate -> ship -> confirm, per order.

Order N's step S fails while `<flags>/fail-S-N` exists; every step run is appended to `<flags>/ledger`
("S N"), and the consumer appends "report <results>", so tests count side effects per lane.
conf: flags (folder), n (orders, default 10), sleep (seconds per step), lanes (max_active_lanes).
"""

import os
import time
from pathlib import Path

from minimap import DAG, get_current_context, task, task_group
from minimap.exceptions import TaskFailed


def _step(name: str, order: int) -> None:
    conf = get_current_context()["conf"]
    flags = Path(conf["flags"])
    time.sleep(float(conf.get("sleep", 0)))
    if (flags / f"fail-{name}-{order}").exists():
        raise TaskFailed(f"{name} of order {order} failed")
    with open(flags / "ledger", "a") as f:
        f.write(f"{name} {order}\n")


with DAG(dag_id="lanes", max_active_tasks=8) as dag:

    @task
    def orders():
        return list(range(int(get_current_context()["conf"].get("n", 10))))

    @task
    def validate(order):
        _step("validate", order)
        return order

    @task
    def ship(order, carrier):
        _step("ship", order)
        return f"{carrier}-{order}"

    @task
    def confirm(shipment, ti):
        order = int(shipment.rsplit("-", 1)[1])
        if ti.xcom_pull(task_ids="fulfil.validate") != order:  # a step of the same group: this lane's value
            raise TaskFailed(f"xcom_pull gave {ti.xcom_pull(task_ids='fulfil.validate')!r} in lane {order}")
        _step("confirm", order)
        return shipment

    @task
    def report(shipments):
        with open(Path(get_current_context()["conf"]["flags"]) / "ledger", "a") as f:
            f.write(f"report {shipments}\n")
        return shipments

    @task_group(max_active_lanes=int(os.environ.get("LANES_CAP", "0")) or None, map_index_template="order-{{ order }}")
    def fulfil(order, carrier):
        return confirm(ship(validate(order), carrier))

    report(fulfil.partial(carrier="dhl").expand(order=orders()))
