"""Mapped task group throughput: `python bench/groups.py [--lanes N]` (default 10,000; a few minutes).

A group of three no-op steps over N lanes (3 N instances), beside the single mapped task of bench/fanout.py over
the same number of instances, in the same run of this script, on SQLite and on Postgres: compare the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import database, figure, results, rows, run_cli, span  # noqa: E402
from minimap import api  # noqa: E402

STEPS = ("lane.first", "lane.second", "lane.third")


def group_rate(backend: str, lanes: int) -> None:
    with database(backend) as url:
        wall, _, pss = run_cli(url, "run", "bench/groups_dag.py", "--conf", json.dumps({"n": lanes}))
        store = api.open_store(url)
        steps = [i for t in STEPS for i in rows(store, t)]
        collect = rows(store, "collect")[0]
        assert len(steps) == 3 * lanes and collect.result == lanes
        rate = len(steps) / span(steps)
        handoff = (collect.started_at - max(i.ended_at for i in steps)).total_seconds()  # type: ignore[operator,type-var]
        store.engine.dispose()
    key = f"groups-{lanes}"
    figure(key, backend, "group instances per second (3 steps a lane)", rate, "/s")
    figure(key, backend, "lanes per second", rate / 3, "/s")
    figure(key, backend, "wall time of `minimap run` (s)", wall, "s")
    figure(key, backend, "last lane end -> consumer start (ms)", 1000 * handoff, "ms")
    figure(key, backend, "peak PSS, all minimap processes (MB)", pss / 1e6, "MB")


def task_rate(backend: str, n: int) -> None:
    with database(backend) as url:
        run_cli(url, "run", "bench/fanout.py", "--conf", json.dumps({"n": n}))
        store = api.open_store(url)
        mapped = rows(store, "noop")
        assert len(mapped) == n
        rate = n / span(mapped)
        store.engine.dispose()
    figure(f"fanout-{n}", backend, "mapped instances per second (one task)", rate, "/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lanes", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], action="append")
    args = parser.parse_args()
    for backend in args.backend or ["sqlite", "postgres"]:
        task_rate(backend, 3 * args.lanes)
        group_rate(backend, args.lanes)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "groups.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
