"""Alembic environment for minimap: runs on the connection minimap passes, or on MINIMAP_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from minimap.store.tables import metadata, on_dialect


def run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=on_dialect(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    from minimap.store.engine import make_engine

    engine = make_engine(None)  # MINIMAP_DATABASE_URL, else the default SQLite
    with engine.connect() as conn:
        run(conn)
        conn.commit()
