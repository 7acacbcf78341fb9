"""The lane matrix of a mapped task group on the web page: linked from the run, one row per lane, paged."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

from minimap import api
from minimap.store.storage import Store
from minimap.ui.app import create_app
from minimap.ui.format import url
from tests.conftest import DAGS


def test_a_groups_lanes_are_a_paged_matrix_linked_from_its_run(store: Store, flags: Path) -> None:
    (flags / "fail-ship-3").touch()
    run = api.run(str(DAGS / "lanes.py"), conf={"flags": str(flags), "n": 130}, store=store, workers=4)
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        run_page = client.get(url("runs", run.run_id)).text
        lanes_url = url("runs", run.run_id, "groups", "fulfil")
        assert f'href="{lanes_url}"' in run_page

        first = client.get(lanes_url)
        assert first.status_code == 200
        rows = re.findall(
            r'<td class="num">(\d+)</td>\s*<td>([^<]*)</td>\s*<td><span class="badge s-(\w+)">', first.text
        )
        assert [int(i) for i, _, _ in rows] == list(range(100))  # a page of 100 lanes, in index order
        assert rows[3] == ("3", "order-3", "failed") and rows[4] == ("4", "order-4", "success")
        assert "[130 lanes]" in first.text
        lane_3 = re.search(r'<td class="num">3</td>(.*?)</tr>', first.text, re.S)
        assert lane_3 is not None
        states = re.findall(r"badge s-(\w+)", lane_3.group(1))
        assert states == ["failed", "success", "failed", "upstream_failed"]  # the lane, then validate, ship, confirm

        following = re.search(r'<a rel="next" href="([^"]+)"', first.text)
        assert following is not None
        second = client.get(following.group(1).replace("&amp;", "&")).text
        indexes = [int(i) for i in re.findall(r'<td class="num">(\d+)</td>', second)]
        assert indexes == list(range(100, 130))
        assert 'rel="next"' not in second

        assert client.get(url("runs", run.run_id, "groups", "nope")).status_code == 404
