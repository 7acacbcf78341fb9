"""Mapped task groups through the `minimap` command, on both backends: lanes, caps, failures, clears."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DAGS, ledger, minimap_cli

LANES = str(DAGS / "lanes.py")
RULES = str(DAGS / "lane_rules.py")
EMPTY = str(DAGS / "lanes_empty.py")
STEPS = ("fulfil.validate", "fulfil.ship", "fulfil.confirm")


def run(db_url: str, path: str, conf: dict[str, Any], *more: str, env: dict[str, str] | None = None) -> int:
    proc = minimap_cli("run", path, "--conf", json.dumps(conf), *more, db_url=db_url, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode


def instances(db_url: str) -> list[dict[str, Any]]:
    proc = minimap_cli("tasks", "--json", db_url=db_url)
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


def matrix(db_url: str, group: str) -> dict[int, dict[str, str]]:
    proc = minimap_cli("tasks", "--group", group, "--json", db_url=db_url)
    assert proc.returncode == 0, proc.stderr
    return {lane["map_index"]: {**lane["states"], "": lane["state"]} for lane in json.loads(proc.stdout)["lanes"]}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.slow
def test_lanes_run_depth_first_under_max_active_lanes(db_url: str, flags: Path) -> None:
    code = run(db_url, LANES, {"flags": str(flags), "sleep": 0.05}, "--workers", "6", env={"LANES_CAP": "2"})
    assert code == 0
    spans: dict[int, list[datetime]] = {}
    for i in instances(db_url):
        if i["task_id"] in STEPS:
            spans.setdefault(i["map_index"], []).extend([when(i["started_at"]), when(i["ended_at"])])
    assert sorted(spans) == list(range(10))
    # lane 0's last step ended before lane 9's first began: lanes under way finish before new ones start
    assert max(spans[0]) <= min(spans[9])
    # and never more than two lanes in flight: at each lane's start, count the lanes whose span covers it
    for i, span in spans.items():
        start = min(span)
        flying = [j for j, s in spans.items() if min(s) <= start < max(s)]
        assert len(flying) <= 2, (i, flying)


@pytest.mark.slow
def test_a_failed_lane_holds_back_only_itself_and_a_clear_reruns_only_it(db_url: str, flags: Path) -> None:
    (flags / "fail-ship-3").touch()
    assert run(db_url, LANES, {"flags": str(flags)}) == 1
    lanes = matrix(db_url, "fulfil")
    assert lanes[3] == {"fulfil.validate": "success", "fulfil.ship": "failed", "fulfil.confirm": "upstream_failed",
                        "": "failed"}  # fmt: skip
    assert all(lanes[i][""] == "success" for i in range(10) if i != 3)
    assert [i["state"] for i in instances(db_url) if i["task_id"] == "report"] == ["upstream_failed"]
    before = Counter(ledger(flags))
    assert before["validate 3"] == 1 and "ship 3" not in before and not any(k.startswith("report") for k in before)

    (flags / "fail-ship-3").unlink()
    proc = minimap_cli("clear", "--group", "fulfil", "--map-index", "3", "--dry-run", db_url=db_url)
    assert proc.returncode == 0, proc.stderr
    assert "fulfil.ship[3] (failed)" in proc.stderr and "fulfil.confirm[3] (upstream_failed)" in proc.stderr
    assert "report (upstream_failed)" in proc.stderr and "[4]" not in proc.stderr
    proc = minimap_cli("clear", "--group", "fulfil", "--map-index", "3", db_url=db_url)
    assert proc.returncode == 0, proc.stderr
    after = Counter(ledger(flags)) - before
    # lane 3 from its first step that did not succeed, then the consumer: nothing else ran again
    assert sorted(after) == ["confirm 3", "report ['dhl-0', 'dhl-1', 'dhl-2', 'dhl-3', 'dhl-4', 'dhl-5', "
                             "'dhl-6', 'dhl-7', 'dhl-8', 'dhl-9']", "ship 3"]  # fmt: skip
    assert all(n == 1 for n in after.values())


@pytest.mark.slow
def test_clear_one_step_of_one_lane_and_every_failed_lane(db_url: str, flags: Path) -> None:
    for name in ("fail-validate-2", "fail-confirm-5", "fail-confirm-7"):
        (flags / name).touch()
    assert run(db_url, LANES, {"flags": str(flags)}) == 1
    for name in ("fail-validate-2", "fail-confirm-5"):
        (flags / name).unlink()
    before = Counter(ledger(flags))
    proc = minimap_cli("clear", "--task", "fulfil.validate", "--map-index", "2", "--no-wait", db_url=db_url)
    assert proc.returncode == 0, proc.stderr
    reset = [ln.strip() for ln in proc.stderr.splitlines()[1:]]
    # lane 2's steps that did not succeed and the consumer; not lane 5's or 7's failures
    assert reset == ["fulfil.validate[2] (failed)", "fulfil.ship[2] (upstream_failed)",
                     "fulfil.confirm[2] (upstream_failed)", "report (upstream_failed)"]  # fmt: skip
    proc = minimap_cli("clear", "--group", "fulfil", "--state", "failed", db_url=db_url)
    assert proc.returncode == 1, proc.stderr  # lane 7 fails again
    lanes = matrix(db_url, "fulfil")
    assert [i for i, lane in lanes.items() if lane[""] != "success"] == [7]
    after = Counter(ledger(flags)) - before
    assert sorted(after) == ["confirm 2", "confirm 5", "ship 2", "validate 2"]


@pytest.mark.slow
def test_trigger_rules_are_decided_per_lane(db_url: str, flags: Path) -> None:
    (flags / "fail-a-1").touch()
    (flags / "skip-a-2").touch()
    assert run(db_url, RULES, {"flags": str(flags)}) == 1  # lane 1's plain step is a leaf that could not run
    lanes = matrix(db_url, "lane")
    row = {i: [lanes[i][f"lane.{t}"] for t in ("a", "on_failure", "if_fine", "always", "plain")] for i in lanes}
    assert row[0] == row[3] == row[4] == ["success", "skipped", "success", "success", "success"]
    assert row[1] == ["failed", "success", "upstream_failed", "success", "upstream_failed"]
    assert row[2] == ["skipped", "skipped", "skipped", "success", "skipped"]
    report = [i for i in instances(db_url) if i["task_id"] == "report"]
    assert report[0]["state"] == "success"
    assert report[0]["result"] == [0, None, None, 3, 4]  # aligned with the lanes: None where a lane gave nothing


def test_a_group_over_nothing_skips_every_step(db_url: str) -> None:
    assert run(db_url, EMPTY, {}) == 0
    states = {i["task_id"]: i["state"] for i in instances(db_url)}
    assert states == {"nothing": "success", "lane.step": "skipped", "summary": "skipped", "done": "success"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "@task_group\ndef g(x):\n    @task_group\n    def h(y):\n        t(y)\n    h.expand(y=[1])\n"
            "g.expand(x=[1])",
            ":11: task group h is mapped inside the mapped task group g",
        ),
        (
            "@task_group\ndef g(x):\n    t.expand(x=[1, 2])\ng.expand(x=[1])",
            ":8: task g.t is mapped inside the mapped task group g",
        ),
        ("@task_group\ndef g(x):\n    t(x)\ng.expand()", ":9: expand() of task group g needs at least one argument"),
        (
            "@task_group\ndef g(x):\n    t(x)\ng.partial(x=1).expand(x=[2])",
            ":9: argument 'x' of task group g is given to both partial() and expand()",
        ),
        ("@task_group\ndef g(x):\n    t(x)\ng.expand(x='abc')", ":9: expand() argument 'x' of task group g is a str"),
        ("@task_group(max_active_lanes=0)\ndef g(x):\n    t(x)\ng.expand(x=[1])", ":6: max_active_lanes must be"),
        ("@task_group(tolerated_failures=1)\ndef g(x):\n    t(x)\ng(1)", ":9: tolerated_failures applies to a mapped"),
        ("@task_group(tolerated_failures='x%')\ndef g(x):\n    t(x)\ng.expand(x=[1])", ":6: tolerated_failures must"),
        ("@task_group(tolerated_failures=-1)\ndef g(x):\n    t(x)\ng.expand(x=[1])", ":6: tolerated_failures must"),
    ],
)
def test_group_misuse_is_one_line_with_file_and_line(tmp_path: Path, db_url: str, source: str, expected: str) -> None:
    path = tmp_path / "bad_group.py"
    head = "from minimap import DAG, task, task_group\nwith DAG('bad') as dag:\n    @task\n    def t(x):\n" \
           "        return x\n"  # fmt: skip
    path.write_text(head + "".join(f"    {line}\n" for line in source.splitlines()))
    proc = minimap_cli("run", str(path), db_url=db_url)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"bad_group.py{expected}" in lines[0], lines[0]


def test_lane_matrix_names_lanes_with_the_group_template(db_url: str, flags: Path) -> None:
    assert run(db_url, LANES, {"flags": str(flags), "n": 3}) == 0
    proc = minimap_cli("tasks", "--group", "fulfil", db_url=db_url)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["map_index", "label", "lane", "validate", "ship", "confirm"]
    assert lines[1].split() == ["0", "order-0", "success", "success", "success", "success"]
    proc = minimap_cli("tasks", "--group", "nope", db_url=db_url)
    assert proc.returncode == 2 and "no mapped task group 'nope'" in proc.stderr
    assert isinstance(proc, subprocess.CompletedProcess)
