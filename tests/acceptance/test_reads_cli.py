"""`minimap runs`, `tasks` and `logs` as users read them (issue 8 §3): offsets, durations, one count line per
mapped task, and one clear line for what does not exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.acceptance.test_cli import SHIPPING, one_line_error
from tests.conftest import minimap_cli

KOLKATA = {"TZ": "Asia/Kolkata"}  # +05:30: an offset nobody mistakes for UTC


@pytest.mark.slow
def test_tasks_runs_and_logs_read_plainly(db_url: str, flags: Path) -> None:
    (flags / "fail-K").touch()
    conf = json.dumps({"flags": str(flags)})
    assert minimap_cli("run", SHIPPING, "--conf", conf, db_url=db_url).returncode == 1

    tasks = minimap_cli("tasks", db_url=db_url, env=KOLKATA)
    assert tasks.returncode == 0, tasks.stderr
    header, *rows = tasks.stdout.splitlines()
    assert header.split() == ["task_id", "map_index", "label", "state", "try", "started", "duration", "result", "/",
                              "error"]  # fmt: skip
    send_10 = next(r for r in rows if r.startswith("send") and " K " in r)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+05:30", send_10), send_10
    assert re.search(r"\d+\.\d\d s", send_10) and "TaskFailed: warehouse rejected item K" in send_10
    assert "recorded" not in tasks.stdout
    assert rows[-1] == "send [12]: 11 success, 1 failed"  # one summary line per mapped task

    only = minimap_cli("tasks", "--task", "summarize", db_url=db_url)
    assert "send [12]" not in only.stdout and "upstream_failed" in only.stdout

    runs = minimap_cli("runs", db_url=db_url, env=KOLKATA)
    assert runs.returncode == 0, runs.stderr
    assert "+05:30" in runs.stdout and "12 success, 1 failed, 1 upstream_failed" in runs.stdout

    log = minimap_cli("logs", "--task", "send", "--map-index", "10", db_url=db_url)
    assert log.returncode == 0 and "TaskFailed: warehouse rejected item K" in log.stdout
    assert "--- send[10] try 1: failed" in log.stderr
    missing = minimap_cli("logs", "--task", "send", "--map-index", "10", "--try", "2", db_url=db_url)
    assert missing.returncode == 2 and "send[10] has no try 2; its tries are 1" in one_line_error(missing)
    not_yet = minimap_cli("logs", "--task", "summarize", db_url=db_url)
    assert "summarize has no finished try yet (it is upstream_failed)" in one_line_error(not_yet)
    unknown = minimap_cli("logs", "--task", "sned", db_url=db_url)
    assert unknown.returncode == 2 and "has no task 'sned'; its tasks are" in one_line_error(unknown)
