"""A downstream task that receives a mapped task's whole output as a lazy sequence."""

from minimap import DAG, task

with DAG("lazy") as dag:

    @task
    def maybe(x: int) -> int | None:
        return None if x % 3 == 0 else x  # None results are left out, as in a list of results

    @task
    def inspect(results, label: str) -> dict:
        return {
            "type": type(results).__name__,
            "len": len(results),
            "items": list(results),
            "first": results[0],
            "last": results[-1],
            "slice": results[1:3],
            "equal": results == [x for x in range(10) if x % 3],
            "label": label,
        }

    @task
    def passthrough(results):
        return results  # stored as the list it stands for

    out = maybe.expand(x=list(range(10)))
    inspect(out, label="kept")
    passthrough(out)
