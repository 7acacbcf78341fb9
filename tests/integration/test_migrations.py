"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from minimap.store import engine as db
from minimap.store.tables import metadata, on_dialect


def test_upgrade_from_empty_matches_the_models(db_url: str) -> None:
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        command.downgrade(db._alembic_config(conn), "base")  # an empty database...
        conn.commit()
    assert db.current_revision(engine) is None
    assert db.upgrade(engine) is True  # ...brought to head the way users get it
    assert db.upgrade(engine) is False
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_object": on_dialect(conn.dialect.name)}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)
    engine.dispose()
    assert diff == [], "models and migrations differ: alembic -c pyproject.toml revision --autogenerate -m ..."
