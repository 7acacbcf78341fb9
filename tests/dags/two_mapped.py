"""fetch -> process (mapped) -> notify (mapped over fetch too, all_done) -> report; per_item mapped over process.

`<flags>/fail-<task>-<x>` makes that instance fail; each execution is written to `<flags>/ledger`.
"""

from pathlib import Path

from minimap import DAG, get_current_context, task


def _run(name: str, x: object) -> object:
    flags = Path(get_current_context()["conf"]["flags"])
    with open(flags / "ledger", "a") as f:
        f.write(f"{name} {x}\n")
    if (flags / "big").exists():
        print((flags / "big").read_text())
    if (flags / f"fail-{name}-{x}").exists():
        raise RuntimeError(f"{name} {x} fails")
    return x


with DAG("two_mapped") as dag:

    @task
    def fetch():
        return [0, 1, 2, 3]

    @task
    def process(x):
        return _run("process", x)

    @task(trigger_rule="all_done")
    def notify(y):
        return _run("notify", y)

    @task
    def per_item(z):
        return _run("per_item", z)

    @task
    def report(values):
        return values

    items = fetch()
    processed = process.expand(x=items)
    notified = notify.expand(y=items)
    processed >> notified
    report(per_item.expand(z=processed))
