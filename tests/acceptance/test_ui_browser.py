"""The web page in a real browser (Debian's Chromium driven by Playwright), against a real `minimap ui`,
`minimap scheduler` and `minimap worker`, each its own process.

Outside CI these skip, saying why, when no browser is found; with CI=true a missing browser fails them.
MINIMAP_UI_SCREENSHOT=docs writes the mapped task page's screenshot to docs/ui-mapped-task.png.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.uiseed import seed
from minimap import api, service
from minimap.states import RunState
from minimap.store import engine as db
from minimap.store.storage import Store
from minimap.ui.format import url
from tests.acceptance.test_daemons import Processes
from tests.conftest import DAGS, ROOT, ledger

CHROMIUM = os.environ.get("MINIMAP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _no_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set MINIMAP_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _no_browser()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@pytest.fixture
def procs(db_url: str, tmp_path: Path) -> Iterator[Processes]:
    p = Processes(db_url, tmp_path)
    yield p
    p.stop_all()


def start_ui(procs: Processes) -> str:
    """`minimap ui` on a free port; its base URL once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs.start("ui", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(base), 30, "minimap ui to answer", procs)
    return base


def _answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/static/minimap.css", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def wait_for(condition: Callable[[], bool], timeout: float, what: str, procs: Processes) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}\n{procs.logs()[-4000:]}")


def screenshot(page: Any, tmp_path: Path) -> None:
    target = ROOT / "docs" / "ui-mapped-task.png" if os.environ.get("MINIMAP_UI_SCREENSHOT") == "docs" else None
    page.screenshot(path=str(target or tmp_path / "ui-mapped-task.png"), full_page=True)


@pytest.mark.slow
def test_clear_failed_from_the_browser(
    db_url: str, flags: Path, browser: Any, procs: Processes, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    (flags / "fail-3").touch()
    (flags / "fail-7").touch()
    store = Store(db.connect(db_url))
    run_id = api.trigger_file(store, str(DAGS / "ui_story.py"), conf={"flags": str(flags)}).run_id
    procs.start("scheduler")
    procs.start("worker", "--concurrency", "4")
    wait_for(lambda: store.run(run_id).state is RunState.FAILED, 90, "the run to fail", procs)
    before = Counter(ledger(flags))
    assert sorted(before) == sorted(f"sent {n}" for n in range(12) if n not in (3, 7))
    (flags / "fail-3").unlink()  # the warehouse is fixed; the two orders can go out now
    (flags / "fail-7").unlink()

    base = start_ui(procs)
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(base + "/")
    page.get_by_role("link", name=run_id).click()
    expect(page.locator("h1")).to_contain_text(run_id)
    page.locator("a.count.s-failed").click()  # send's "2 failed": the filtered list
    expect(page.locator("#instances tbody tr")).to_have_count(2)
    expect(page.locator("#instances tbody")).to_contain_text("order-03")
    page.get_by_role("link", name="7", exact=True).click()
    expect(page.locator("pre.error")).to_contain_text("warehouse rejected order-07")
    expect(page.locator("details.try .log")).to_contain_text("sending order-07 to the warehouse")
    expect(page.locator("details.try .log")).to_contain_text("Traceback")
    page.go_back()
    expect(page.locator("#instances tbody tr")).to_have_count(2)
    page.locator("a.count", has_text="all 12").click()
    expect(page.locator("#instances tbody tr")).to_have_count(12)
    screenshot(page, tmp_path)

    page.get_by_role("button", name="Clear failed (2)").click()
    plan = page.locator("ul.plan")
    expect(plan).to_contain_text("send[3]")
    expect(plan).to_contain_text("send[7]")
    expect(plan).to_contain_text("summarize")
    expect(page.locator("pre.cmd")).to_contain_text("--task send --state failed --no-wait")
    page.get_by_role("button", name="Reset these 3").click()
    expect(page.locator(".notice")).to_contain_text("Reset 3 instances")

    page.goto(base + url("runs", run_id))  # the live fragment turns the run's state to success by itself
    expect(page.locator("#run-tasks dl.facts .badge")).to_have_text("success", timeout=90_000)
    expect(page.locator("#run-tasks")).to_contain_text("12 success")
    after = Counter(ledger(flags))
    assert after == before + Counter({"sent 3": 1, "sent 7": 1, "summary 12": 1})  # no succeeded index ran again
    assert service.instance_detail(store, run_id, "summarize", -1).result == 12
    store.engine.dispose()


@pytest.mark.slow
def test_search_and_sort_among_ten_thousand(db_url: str, browser: Any, procs: Processes) -> None:
    from playwright.sync_api import expect

    store = Store(db.connect(db_url))
    seed(store, "big:1+1", 10_000, slow=4321, labels={6789: "the-needle"})
    store.engine.dispose()
    base = start_ui(procs)
    task_page = base + url("runs", "big:1+1", "tasks", "work")
    rows = "#instances tbody tr"

    page = browser.new_page()  # with JavaScript: htmx swaps the table as one types
    page.goto(task_page)
    expect(page.locator(rows)).to_have_count(100)
    page.get_by_placeholder("label contains").fill("needle")
    expect(page.locator(rows)).to_have_count(1)
    expect(page.locator(rows)).to_contain_text("the-needle")
    page.goto(task_page)
    page.get_by_role("link", name="duration").click()
    expect(page.locator(rows).first.locator("td.num").first).to_have_text("4321")

    plain = browser.new_context(java_script_enabled=False).new_page()  # and without: forms and links
    plain.goto(task_page)
    plain.get_by_placeholder("label contains").fill("needle")
    plain.get_by_role("button", name="Search").click()
    expect(plain.locator(rows)).to_have_count(1)
    expect(plain.locator(rows)).to_contain_text("6789")
    plain.goto(task_page)
    plain.get_by_role("link", name="next 100").click()
    expect(plain.locator(rows).first.locator("td.num").first).to_have_text("100")
