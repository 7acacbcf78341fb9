"""A run stored by a minimap with another snapshot format is refused in one line, never misread."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, text

from minimap import api
from minimap.snapshot import SNAPSHOT_VERSION
from tests.conftest import DAGS, minimap_cli


def test_a_run_with_another_snapshot_version_is_refused(db_url: str) -> None:
    store = api.open_store(db_url)
    run_id = api.trigger_file(store, str(DAGS / "mapping.py"), "dict_expand").run_id
    store.engine.dispose()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        row = conn.execute(text("SELECT snapshot FROM dag_run WHERE run_id = :r"), {"r": run_id}).one()
        stored = json.loads(row[0])
        stored["version"] = SNAPSHOT_VERSION + 1
        conn.execute(text("UPDATE dag_run SET snapshot = :s WHERE run_id = :r"), {"s": json.dumps(stored), "r": run_id})
    engine.dispose()

    for command in (["resume", "--run-id", run_id], ["tasks", "--run-id", run_id], ["clear", "--task", "x"]):
        proc = minimap_cli(*command, db_url=db_url)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("error: the run of DAG 'dict_expand' was stored by another minimap"), lines[0]
        assert f"snapshot format {SNAPSHOT_VERSION + 1}, this minimap reads format {SNAPSHOT_VERSION}" in lines[0]
