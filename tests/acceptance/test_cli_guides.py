"""The CLI guides: index lists and ranges, a question before succeeded work runs again, `trigger --wait`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.acceptance.test_cli import one_line_error
from tests.acceptance.test_daemons import Processes
from tests.conftest import DAGS, ROOT, ledger, minimap_cli

SHIPPING = str(DAGS / "shipping_flags.py")


def _run(db_url: str, flags: Path, *failing: str) -> subprocess.CompletedProcess[str]:
    for item in failing:
        (flags / f"fail-{item}").touch()
    return minimap_cli("run", SHIPPING, "--conf", json.dumps({"flags": str(flags)}), db_url=db_url)


def _states(db_url: str) -> dict[str, str]:
    rows = json.loads(minimap_cli("tasks", "--json", db_url=db_url).stdout)
    return {f"{r['task_id']}[{r['map_index']}]": r["state"] for r in rows}


def test_map_index_takes_lists_and_ranges_and_the_flag_repeats(db_url: str, flags: Path) -> None:
    first = _run(db_url, flags, "D", "H", "K", "L")  # indexes 3, 7, 10, 11
    assert first.returncode == 1, first.stderr
    dry = minimap_cli(
        "clear", "--task", "send", "--map-index", "3,7", "--map-index", "10-11", "--dry-run", db_url=db_url
    )
    assert dry.returncode == 0, dry.stderr
    assert "would reset 5 instances" in dry.stderr
    for name in ("send[3]", "send[7]", "send[10]", "send[11]", "summarize (upstream_failed)"):
        assert name in dry.stderr
    for item in "DHKL":
        (flags / f"fail-{item}").unlink()
    cleared = minimap_cli("clear", "--task", "send", "--map-index", "3,7,10-11", db_url=db_url)
    assert cleared.returncode == 0, cleared.stderr + cleared.stdout
    sent = sorted(x.split()[1] for x in ledger(flags) if x.startswith("sent"))
    assert sent == list("ABCDEFGHIJKL")  # each order once


@pytest.mark.parametrize("bad", ["5-2", "3,,7", "x", "1-9999999"])
def test_a_bad_index_list_is_one_line(db_url: str, flags: Path, bad: str) -> None:
    proc = minimap_cli("clear", "--task", "send", "--map-index", bad, db_url=db_url)
    assert proc.returncode == 2
    assert "--map-index" in one_line_error(proc)


def test_clearing_what_succeeded_needs_yes_when_there_is_no_terminal(db_url: str, flags: Path) -> None:
    assert _run(db_url, flags).returncode == 0
    refused = minimap_cli("clear", "--task", "send", "--map-index", "0,1", db_url=db_url)
    assert refused.returncode == 2
    line = one_line_error(refused)
    assert "2 of these succeeded and will run again (send[0], send[1])" in line and "--yes" in line
    assert set(_states(db_url).values()) == {"success"}  # nothing was reset
    assert len([x for x in ledger(flags) if x.startswith("sent")]) == 12

    again = minimap_cli("clear", "--task", "send", "--map-index", "0,1", "--yes", db_url=db_url)
    assert again.returncode == 0, again.stderr
    sent = sorted(x.split()[1] for x in ledger(flags) if x.startswith("sent"))
    assert sent == sorted("ABCDEFGHIJKL" + "AB")  # asked for: A and B were sent again, nothing else


def _clear_on_a_terminal(db_url: str, answer: bytes) -> tuple[int, str]:
    """`minimap clear` with a pseudo-terminal as its stdin, answering its question with `answer`."""
    main, child = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "minimap", "clear", "--task", "send", "--map-index", "4"],
        stdin=child,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "MINIMAP_DATABASE_URL": db_url},
        cwd=ROOT,
    )
    os.close(child)
    os.write(main, answer)
    out, err = proc.communicate(timeout=60)
    os.close(main)
    return proc.returncode, err.decode() + out.decode()


def test_on_a_terminal_clearing_what_succeeded_asks_first(db_url: str, flags: Path) -> None:
    assert _run(db_url, flags).returncode == 0
    code, text = _clear_on_a_terminal(db_url, b"n\n")
    assert code == 0, text
    assert "1 of these succeeded and will run again (send[4]). Go on?" in text and "nothing was reset" in text
    assert set(_states(db_url).values()) == {"success"}
    code, text = _clear_on_a_terminal(db_url, b"y\n")
    assert code == 0, text
    assert "reset 1 instance" in text
    assert [x.split()[1] for x in ledger(flags) if x.startswith("sent")].count("E") == 2


@pytest.mark.slow
def test_trigger_wait_follows_the_run_that_daemons_drive(db_url: str, flags: Path, tmp_path: Path) -> None:
    daemons = Processes(db_url, tmp_path)
    try:
        daemons.start("scheduler")
        daemons.start("worker", "--concurrency", "3")
        (flags / "fail-C").touch()
        conf = json.dumps({"flags": str(flags)})
        began = time.monotonic()
        failed = minimap_cli("trigger", SHIPPING, "--conf", conf, "--wait", db_url=db_url)
        assert failed.returncode == 1, failed.stderr + daemons.logs()[-3000:]
        run_id = failed.stdout.splitlines()[0]
        assert f"run {run_id} of shipping_flags: failed" in failed.stdout
        assert "send[2] (C) try 1: TaskFailed: warehouse rejected item C" in failed.stdout
        (flags / "fail-C").unlink()
        cleared = minimap_cli(
            "clear", "--run-id", run_id, "--task", "send", "--state", "failed", "--no-wait", db_url=db_url
        )
        assert cleared.returncode == 0, cleared.stderr
        followed = minimap_cli("trigger", SHIPPING, "--conf", conf, "--follow", db_url=db_url)
        assert followed.returncode == 0, followed.stderr
        assert ": success" in followed.stdout
        assert time.monotonic() - began < 110
    finally:
        daemons.stop_all()


def test_trigger_wait_says_who_should_run_a_run_nobody_runs(db_url: str, flags: Path) -> None:
    """The hint comes 5 s after the run is created; the command is stopped at 25 s (a loaded machine starts slowly)."""
    conf = json.dumps({"flags": str(flags)})
    with pytest.raises(subprocess.TimeoutExpired) as waited:
        minimap_cli("trigger", SHIPPING, "--conf", conf, "--wait", db_url=db_url, timeout=25)
    said = (
        (waited.value.stderr or b"").decode() if isinstance(waited.value.stderr, bytes) else waited.value.stderr or ""
    )
    assert "is still queued (no worker is registered): start `minimap scheduler` and `minimap worker`" in said


def test_a_reader_that_stops_early_is_not_an_error(db_url: str, flags: Path) -> None:
    """`minimap tasks | head -1`: the closed pipe ends the command quietly (141, as SIGPIPE would), no traceback.

    The reader is `true`, which exits before minimap has started: its writes always meet a closed pipe."""
    assert _run(db_url, flags).returncode == 0
    proc = subprocess.run(
        f'{sys.executable} -m minimap tasks | true; echo "exit=${{PIPESTATUS[0]}}"',
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        env={**os.environ, "MINIMAP_DATABASE_URL": db_url},
        cwd=ROOT,
        timeout=60,
    )
    assert proc.stdout.splitlines() == ["exit=141"]
    assert "error" not in proc.stderr and "Traceback" not in proc.stderr


def test_the_page_without_its_extra_is_one_line_naming_it(db_url: str) -> None:
    """`minimap ui` where `pip install minimap` left out the `ui` extra (starlette cannot be imported)."""
    hide = "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None; "
    proc = subprocess.run(
        [sys.executable, "-c", hide + "from minimap.cli import main; main(['ui'], prog_name='minimap')"],
        capture_output=True,
        text=True,
        env={**os.environ, "MINIMAP_DATABASE_URL": db_url},
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "which is not installed: pip install 'minimap[ui]'" in one_line_error(proc)
