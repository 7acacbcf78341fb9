"""The web page's routes and fragments with Starlette's TestClient, on SQLite and Postgres: pages, JSON, paging
across page boundaries, escaping, 404s, and the safety rules (CSRF, token, Host, no password shown)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from starlette.testclient import TestClient

from bench.uiseed import seed
from minimap import api, service
from minimap.exceptions import NotFoundError
from minimap.execution.scheduler import Scheduler
from minimap.service import operations
from minimap.states import RunState, TIState
from minimap.store.storage import Store
from minimap.ui.app import create_app
from minimap.ui.format import url
from minimap.ui.security import CSRF_COOKIE
from minimap.ui.views import LOG_TAIL
from tests.conftest import DAGS

RUN = "manual__2026-01-01T00:00:00.000001+00:00 a/b%c?"  # ':', '+', and what a URL must encode
N = 250
XSS = "<script>alert(1)</script>"
TASK = url("runs", RUN, "tasks", "work")


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    seed(store, RUN, N, slow=17, failed=[3, 7], labels={5: XSS})
    with TestClient(create_app(store), raise_server_exceptions=False) as c:
        yield c


def _indexes(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'name="map_index" value="(\d+)" form="clear-selected"', html)]


def _next(html: str) -> str | None:
    m = re.search(r'<a rel="next" href="([^"]+)"', html)
    return m.group(1).replace("&amp;", "&") if m else None


def test_every_page_answers_with_encoded_run_ids(client: TestClient) -> None:
    for path in ["/", url("runs", RUN), url("runs", RUN, part="tasks"), TASK, TASK + "/7", TASK + "/clear?state=failed",
                 "/workers", url("runs", RUN, "tasks", "total")]:  # fmt: skip
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
    headers = client.get("/").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"
    assert "the run is queued" in client.get(url("runs", RUN, "tasks", "total", -1)).text  # why it is not running
    run_page = client.get(url("runs", RUN)).text
    assert TASK in run_page and f'{TASK}?state=failed">2 failed' in run_page  # counts link to the filtered list
    assert 'work</a> <span class="muted">[250]' in run_page


def test_pages_follow_keyset_cursors_across_boundaries(client: TestClient) -> None:
    for sort, first in [("index", 0), ("-duration", 17), ("-end", 17), ("end", 0)]:
        seen: list[int] = []
        path: str | None = url("runs", RUN, "tasks", "work", sort=sort)
        pages = 0
        while path:
            html = client.get(path).text
            rows = _indexes(html)
            assert 0 < len(rows) <= 100
            seen += rows
            path = _next(html)
            pages += 1
        assert pages == 3 and seen[0] == first and sorted(seen) == list(range(N)) and len(set(seen)) == N, sort
    api: list[int] = []
    after = None
    while True:
        body = client.get("/api" + url("runs", RUN, "tasks", "work", "instances", after=after, limit=100)).json()
        api += [i["map_index"] for i in body["items"]]
        after = body["next_after"]
        if after is None:
            break
    assert api == list(range(N))


def test_state_filter_search_and_sort(client: TestClient) -> None:
    failed = client.get(TASK + "?state=failed").text
    assert _indexes(failed) == [3, 7] and "ValueError: bad item" in failed
    assert _indexes(client.get(TASK + "?q=ORDER-00123").text) == [123]
    assert _indexes(client.get(TASK + "?sort=-duration").text)[0] == 17
    rows = client.get(TASK + "?q=order-0012&part=rows")
    assert rows.text.lstrip().startswith('<section id="instances"') and "<html" not in rows.text
    assert _indexes(rows.text) == list(range(120, 130))


def test_user_written_text_is_escaped(client: TestClient, store: Store) -> None:
    page = client.get(TASK + "?q=script").text
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert XSS not in client.get(TASK + "/5").text
    assert XSS not in client.get(url("runs", "<script>x")).text  # an unknown run id echoed in the 404


def test_bad_paths_are_404_pages_never_tracebacks(client: TestClient) -> None:
    for path in [
        url("runs", "nope"),
        url("runs", RUN, "tasks", "nope"),
        TASK + "/x",
        TASK + "/999",
        TASK + "/7/tries/9/log",
        TASK + "/7/tries/x/log",
        "/nowhere",
        "/static/nothing.js",
        url("runs", RUN, "tasks", "nope", "clear", state="failed"),
        TASK + "/clear?map_index=999",
    ]:
        r = client.get(path)
        assert r.status_code == 404, path
        assert "Traceback" not in r.text and "<h1>Not found</h1>" in r.text, path
    r = client.get("/api" + url("runs", "nope"))
    assert r.status_code == 404 and "no run 'nope'" in r.json()["error"]
    bad = client.get(TASK + "?after=garbage")
    assert bad.status_code == 400 and "cursor" in bad.text
    assert client.get(TASK + "?state=bogus").status_code == 400


def test_live_fragment_refreshes_only_while_the_run_is_live(client: TestClient, store: Store) -> None:
    part = client.get(url("runs", RUN, part="tasks")).text
    assert part.lstrip().startswith('<section id="run-tasks"') and 'hx-trigger="every 2s"' in part  # queued: live
    with store.scheduling(RUN) as tx:
        tx.finish(RunState.FAILED)
    assert "hx-trigger" not in client.get(url("runs", RUN, part="tasks")).text


def test_the_instance_rows_refresh_while_live_and_keep_the_ticked_boxes(client: TestClient, store: Store) -> None:
    rows = client.get(TASK + "?part=rows&state=failed&map_index=3&map_index=7").text
    head = rows[rows.index('<section id="instances"') :].split(">", 1)[0]
    assert 'hx-trigger="every 2s"' in head and 'hx-include="#instances input:checked"' in head
    assert "state=failed" in head and "part=rows" in head  # the refresh keeps the filter
    ticked = re.findall(r'value="(\d+)" form="clear-selected" aria-label="select \d+" checked', rows)
    assert ticked == ["3", "7"]
    assert "hx-trigger" not in client.get(TASK + "?after=" + _cursor_after_first_page(client)).text.split("<table")[1]
    with store.scheduling(RUN) as tx:
        tx.finish(RunState.FAILED)
    assert 'hx-trigger="every 2s"' not in client.get(TASK + "?part=rows").text  # finished: nothing refreshes


def _cursor_after_first_page(client: TestClient) -> str:
    nxt = _next(client.get(TASK).text)
    assert nxt is not None
    return nxt.split("after=")[1]


def test_clear_previews_then_resets_exactly_that_plan(client: TestClient, store: Store) -> None:
    preview = client.get(TASK + "/clear?state=failed")
    assert "work[3]" in preview.text and "work[7]" in preview.text and "These 2 instances" in preview.text
    assert "minimap clear --run-id" in preview.text and "--task work --state failed --no-wait" in preview.text
    assert _states(store, [3, 7]) == ["failed", "failed"]  # a preview changes nothing
    expect = re.search(r'name="expect" value="([0-9a-f]+)"', preview.text).group(1)  # type: ignore[union-attr]
    csrf = client.cookies[CSRF_COOKIE]
    stale = client.post(TASK + "/clear", data={"csrf": csrf, "state": "failed", "expect": "0" * 32},
                        follow_redirects=False)  # fmt: skip
    assert stale.status_code == 409 and _states(store, [3, 7]) == ["failed", "failed"]
    done = client.post(TASK + "/clear", data={"csrf": csrf, "state": "failed", "expect": expect},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == TASK + "?cleared=2"
    assert _states(store, [3, 7, 4]) == ["scheduled", "scheduled", "success"]
    assert "Reset 2 instances" in client.get(done.headers["location"]).text


def test_json_clear_dry_run_then_for_real(client: TestClient, store: Store) -> None:
    path = "/api" + url("runs", RUN, "clear")
    plan = client.post(path, json={"task": "work", "map_indexes": [7], "dry_run": True}).json()
    assert plan["plan"] == [{"task_id": "work", "map_index": 7, "state": "failed"}]  # total waits already
    assert plan["reset"] == [] and _states(store, [7]) == ["failed"]
    assert plan["command"].endswith("--task work --map-index 7")
    done = client.post(path, json={"task": "work", "map_indexes": [7]}).json()
    assert done["reset"] == plan["plan"] and _states(store, [7, 3]) == ["scheduled", "failed"]
    assert client.post(path, json={"task": "work", "map_indexes": ["x"]}).status_code == 400
    assert client.post(path, content=b'{"task": "work"}', headers={"content-type": "text/plain"}).status_code == 415


def test_posts_without_csrf_or_from_another_site_are_refused(client: TestClient, store: Store) -> None:
    client.get("/")
    csrf = client.cookies[CSRF_COOKIE]
    form = {"state": "failed", "expect": "x"}
    assert client.post(TASK + "/clear", data=form).status_code == 403
    assert client.post(TASK + "/clear", data={**form, "csrf": "forged"}).status_code == 403
    other = client.post(TASK + "/clear", data={**form, "csrf": csrf}, headers={"origin": "http://evil.example"})
    assert other.status_code == 403
    api = client.post(
        "/api" + url("runs", RUN, "clear"), json={"task": "work"}, headers={"origin": "http://evil.example"}
    )
    assert api.status_code == 403
    assert _states(store, [3, 7]) == ["failed", "failed"]


def test_token_rule(store: Store) -> None:
    seed(store, RUN, 3)
    token = "t" * 24
    with TestClient(create_app(store, token=token)) as c:
        assert c.get("/", follow_redirects=False).status_code == 303
        assert c.get("/api/runs").status_code == 401
        assert c.get("/static/minimap.css", follow_redirects=False).status_code == 303
        assert c.get("/api/runs", headers={"authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/api/runs", headers={"x-minimap-token": "wrong"}).status_code == 401
        assert c.post("/login", data={"token": "wrong"}).status_code == 401
        assert c.post("/login", data={"token": token, "next": "//evil.example"}, follow_redirects=False).headers[
            "location"] == "/"  # fmt: skip
        assert c.get("/").status_code == 200 and RUN in c.get("/").text  # the login cookie now stands for it


def test_host_header_must_be_loopback_when_local(store: Store) -> None:
    with TestClient(
        create_app(store, allowed_hosts=frozenset({"127.0.0.1", "localhost"})), base_url="http://127.0.0.1"
    ) as c:
        assert c.get("/").status_code == 200
        assert c.get("/", headers={"host": "rebound.example"}).status_code == 400


def test_database_password_never_shown() -> None:
    store = Store(create_engine("postgresql+psycopg://minimap:s3cretpw@127.0.0.1:9/nowhere"))
    with TestClient(create_app(store), raise_server_exceptions=False) as c:
        for path in ["/", "/api/runs", url("runs", "r")]:
            r = c.get(path)
            assert r.status_code == 503 and "s3cretpw" not in r.text and "***" in r.text, path


def _states(store: Store, indexes: list[int]) -> list[str]:
    return [service.instance_detail(store, RUN, "work", i).instance.state.value for i in indexes]


def test_preview_is_the_plan_minimap_clear_makes(store: Store) -> None:

    seed(store, RUN, 30, failed=[3, 7])
    with store.scheduling(RUN) as tx:
        tx.settle("total", TIState.UPSTREAM_FAILED)
    cases: list[tuple[list[tuple[str, int | None]], list[TIState] | None, bool]] = [
        ([("work", None)], [TIState.FAILED], False),
        ([("work", 7)], None, False),
        ([("work", 4), ("work", 3)], None, True),
        ([("items", None)], None, False),
        ([("work", None)], None, False),
        ([("work", 3), ("total", None)], [TIState.FAILED, TIState.UPSTREAM_FAILED], False),
    ]
    for targets, only, everything in cases:
        named: list[api.ClearTarget] = [t if i is None else (t, i) for t, i in targets]
        planned = list(operations.plan_clear(store, RUN, named, only, everything).instances)  # what the CLI plans
        assert service.preview_clear(store, RUN, targets, only, everything) == planned, targets
    with pytest.raises(NotFoundError, match="no map index 99: it has map indexes 0–29"):
        service.preview_clear(store, RUN, [("work", 99)])


def test_log_tail_then_load_more(store: Store, flags: Path) -> None:
    from minimap import api
    from tests.conftest import DAGS

    run = api.trigger_file(store, str(DAGS / "ui_story.py"), conf={"flags": str(flags), "noise": 1500})
    api.run_to_end(store, run.run_id, workers=2)
    whole = service.log_view(store, run.run_id, "send", 4).text
    assert len(whole) > 3 * LOG_TAIL
    with TestClient(create_app(store)) as c:
        page = c.get(url("runs", run.run_id, "tasks", "send", 4)).text
        chunks = [html.unescape(re.findall(r"<pre>(.*?)</pre>", page, re.S)[-1])]
        more = re.search(r'class="more" href="([^"]+)"', page)
        while more is not None:
            part = c.get(html.unescape(more.group(1)), headers={"HX-Request": "true"}).text
            assert "<html" not in part  # the fragment alone, prepended by htmx
            chunks.insert(0, html.unescape(re.search(r"<pre>(.*?)</pre>", part, re.S).group(1)))  # type: ignore[union-attr]
            more = re.search(r'class="more" href="([^"]+)"', part)
        assert "".join(chunks) == whole
        plain = c.get(url("runs", run.run_id, "tasks", "send", 4, "tries", 1, "log", before=100)).text
        assert "<html" in plain and "characters 0–100 of" in plain  # without JavaScript: a page of its own


def test_a_big_preview_names_one_page_and_counts_the_rest(client: TestClient) -> None:
    page = client.get(TASK + "/clear?state=success").text
    assert page.count("<li>") == 100 and "These 248 instances" in page
    assert "… and 148 more:" in page and "248 success of work in all" in page
    assert "succeeded</strong> and will run again" in page and "--yes" in page


def test_the_pools_page_shows_slots_in_use_and_waiting(store: Store) -> None:
    api.set_pool(store, "db", 2, description=XSS)
    run_id = api.trigger_file(store, str(DAGS / "pooled.py"), "pooled_a").run_id
    Scheduler(store).tick(run_id)  # six instances of work queued, in pool db
    store.register_worker("h:1:w", "h", 1)
    assert len(store.claim("h:1:w", "h", 1, want=16, parallelism=100, run_id=run_id)) == 2  # the pool's 2 slots
    with TestClient(create_app(store), raise_server_exceptions=False) as c:
        page = c.get("/pools")
        assert page.status_code == 200 and '<a href="/pools">Pools</a>' in page.text
        row = re.search(r"<tr>\s*<td>db</td>(.*?)</tr>", page.text, re.S)
        assert row is not None
        cells = re.findall(r'<td class="num">(\d+)</td>', row.group(1))
        assert cells == ["2", "2", "0", "4"]  # slots, running, open, queued
        assert XSS not in page.text and html.escape(XSS) in page.text
        assert '<td>default_pool</td><td class="num">128</td>' in page.text
        body = c.get("/api/pools").json()
    assert {"name": "db", "slots": 2, "description": XSS, "running": 2, "queued": 4} in body
