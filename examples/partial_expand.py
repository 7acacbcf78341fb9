"""partial() fixes arguments for every instance; expand_kwargs() maps over whole keyword sets."""

from minimap import DAG, task

with DAG(dag_id="partial_expand") as dag:

    @task
    def orders() -> list[dict]:
        return [{"order_id": 1, "weight": 2.5}, {"order_id": 2, "weight": 0.4, "express": True}]

    @task
    def quote(carrier: str, order_id: int, weight: float, express: bool = False) -> str:
        price = weight * (9 if express else 4)
        return f"{carrier}: order {order_id} costs {price:.2f}"

    @task
    def label(warehouse: str, order_id: int) -> str:
        return f"{warehouse}-{order_id}"

    @task
    def report(quotes: list[str], labels: list[str]) -> None:
        for line in quotes + labels:
            print(line)

    report(
        quote.partial(carrier="DHL").expand_kwargs(orders()),
        label.partial(warehouse="eu-1").expand(order_id=[1, 2, 3]),
    )
