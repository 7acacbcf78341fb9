"""Small DAGs, one per mapping feature; tests pick one with dag_id."""

import os
import time

from minimap import DAG, get_current_context, task
from minimap.exceptions import FailNow, SkipTask


@task
def ident(x):
    return x


@task
def collect(values):
    return values


with DAG("cross") as cross:

    @task
    def pair(x, y):
        return f"{x}{y}"

    collect(pair.expand(x=[1, 2], y=["a", "b", "c"]))


with DAG("partial_kwargs") as partial_kwargs:

    @task
    def add(base, x, y=0):
        return base + x + y

    @task
    def rows():
        return [{"x": 1}, {"x": 2, "y": 5}]

    collect(add.partial(base=10).expand_kwargs(rows()))


with DAG("zero") as zero:

    @task
    def nothing():
        return []

    @task
    def after(v):
        return v

    after(ident.expand(x=nothing()))


with DAG("dict_expand") as dict_expand:

    @task
    def kv(pair):
        key, value = pair
        return f"{key}={value}"

    collect(kv.expand(pair={"a": 1, "b": 2}))


with DAG("transforms") as transforms:

    @task
    def nums():
        return [1, 2, 3]

    @task
    def letters():
        return ["x", "y"]

    def double(v):
        return v * 2

    n, l_ = nums(), letters()
    collect.override(task_id="doubled")(ident.expand(x=n.map(double)))
    collect.override(task_id="zipped")(ident.expand(x=n.zip(l_)))
    collect.override(task_id="zipped_long")(ident.expand(x=n.zip(l_, fillvalue="-")))
    collect.override(task_id="chained")(ident.expand(x=n.concat(l_)))
    collect.override(task_id="whole")(n.map(double))


with DAG("mapped_over_mapped") as mapped_over_mapped:

    @task
    def first(x):
        return None if x == 2 else x * 10

    @task
    def second(y):
        return y + 1

    collect(second.expand(y=first.expand(x=[1, 2, 3])))


with DAG("all_done") as all_done:

    @task
    def maybe(x):
        if x == 1:
            raise ValueError("one is bad")
        return x

    collect.override(trigger_rule="all_done")(maybe.expand(x=[0, 1, 2]))


with DAG("retries") as retries:

    @task(retries=2, retry_delay=0)
    def flaky(x):
        if get_current_context()["try_number"] < 2:
            raise RuntimeError(f"first try of {x} fails")
        return x

    @task(retries=3, retry_delay=0)
    def hopeless():
        raise FailNow("no point retrying")

    collect(flaky.expand(x=[1, 2]))
    hopeless()


with DAG("timeout") as timeout:

    @task(execution_timeout=1)
    def slow(x):
        if x == 0:
            time.sleep(60)
        return x

    slow.expand(x=[0, 1])


with DAG("crash") as crash:

    @task
    def die(x):
        if x == 1:
            os._exit(3)
        return x

    collect(die.expand(x=[0, 1, 2]))


with DAG("not_json") as not_json:

    @task
    def odd(x):
        return {x} if x == 1 else x

    odd.expand(x=[0, 1])


with DAG("too_long", max_map_length=3) as too_long:

    @task
    def many():
        return list(range(5))

    @task
    def scalar():
        return 7

    ident.expand(x=many())
    ident.expand(x=scalar())


with DAG("skips") as skips:

    @task
    def skipper():
        raise SkipTask("nothing to do today")

    @task
    def waits(v):
        return v

    @task(trigger_rule="none_failed")
    def tolerant():
        return "ran"

    s = skipper()
    waits(s)
    s >> tolerant()


with DAG("literal") as literal:
    collect(ident.expand(x=["a", "b", "c"]))


# Arguments COPY's text format must escape (tab, newline, carriage return, backslash), quotes, None and non-ASCII:
# each must reach its task as it was written.
AWKWARD = ["a\tb", "c\\d", 'e"f', "g\nh", "i\rj", None, "ü\\N", "\\", {"k": "l\tm"}]

with DAG("awkward") as awkward:
    collect(ident.expand(x=AWKWARD))
