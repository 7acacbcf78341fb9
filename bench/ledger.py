"""At-least-once window benchmark DAG: `n` (from conf) short instances, each appending its index to conf `ledger`
(its side effect) just before it returns."""

import time

from minimap import DAG, get_current_context, task

with DAG("ledger", max_active_tasks=16, max_map_length=1_000_000) as dag:

    @task
    def items() -> list[int]:
        return list(range(get_current_context()["conf"]["n"]))

    @task
    def side_effect(i: int) -> int:
        conf = get_current_context()["conf"]
        time.sleep(conf["sleep"])
        with open(conf["ledger"], "a") as f:
            f.write(f"{i}\n")
        return i

    side_effect.expand(i=items())
