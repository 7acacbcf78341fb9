"""Database URLs, engines and schema upgrades: SQLite by default, Postgres by URL."""

from __future__ import annotations

import importlib.util
import logging
import os
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError, SQLAlchemyError

from minimap.defaults import CONNECT_TIMEOUT, STATEMENT_TIMEOUT
from minimap.exceptions import DatabaseError, DatabaseRefused

log = logging.getLogger(__name__)

READ_ONLY = "minimap_read_only"  # execution option: this connection only reads (SQLite: BEGIN, not BEGIN IMMEDIATE)
_MIGRATION_LOCK = 720_301  # pg_advisory_lock key held while the schema is upgraded
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def minimap_home() -> Path:
    return Path(os.environ.get("MINIMAP_HOME") or Path.home() / ".minimap")


def resolve_url(url: str | None) -> str:
    """`url`, else MINIMAP_DATABASE_URL, else SQLite at $MINIMAP_HOME/minimap.db."""
    url = url or os.environ.get("MINIMAP_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{minimap_home() / 'minimap.db'}"


def mask(url: str) -> str:
    """`url` with its password replaced by ***, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def short(exc: BaseException) -> str:
    """The first line of a driver error, without SQLAlchemy's background link."""
    inner = getattr(exc, "orig", None) or exc
    lines = [ln for ln in str(inner).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(inner).__name__


def database_error(where: str, e: Exception) -> DatabaseError:
    """One line for a driver error on the database `where` (a masked URL): transient (a dropped or refused
    connection, a timeout: the loops wait it out) or a refusal (read-only, no privileges, no such table)."""
    text_ = short(e)
    sqlite_code = getattr(getattr(e, "orig", None), "sqlite_errorname", None)
    if sqlite_code is not None:  # SQLite calls almost everything OperationalError: its code tells them apart
        transient = sqlite_code.startswith(_SQLITE_TRANSIENT)
    else:  # Python 3.10 has no code on sqlite3's errors; Postgres names a refusal by its class
        refusal = ("readonly", "no such table", "no such column", "not a database")
        transient = isinstance(e, (OperationalError, InterfaceError)) and not any(r in text_ for r in refusal)
    if transient:
        return DatabaseError(f"database {where} failed: {text_}")
    return DatabaseRefused(f"database {where} refused: {text_}")


#: SQLite result codes that waiting may cure: a lock, an I/O error or a full disk (the others: a read-only file, a
#: missing table, a file that is not a database).
_SQLITE_TRANSIENT = (
    "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN", "SQLITE_PROTOCOL",
)  # fmt: skip


def _sqlite_folder(path: str | None) -> None:
    """Create the database file's folder, or say in one line why it cannot be."""
    if not path or path == ":memory:":
        return
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, not a folder" if blocker else f"cannot create folder {folder}: {e.strerror}"
        raise DatabaseError(f"cannot use SQLite database {path}: {reason}") from None
    if not os.access(folder, os.W_OK) and not os.access(path, os.W_OK):
        raise DatabaseError(f"cannot use SQLite database {path}: folder {folder} is not writable")


def _postgres_args(url: URL) -> dict[str, Any]:
    """Timeouts so that a server that never answers ends in an error, not a hang; the URL's own settings win."""
    args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        args["connect_timeout"] = max(1, round(CONNECT_TIMEOUT))
    if "options" not in url.query and STATEMENT_TIMEOUT > 0:
        args["options"] = f"-c statement_timeout={round(STATEMENT_TIMEOUT * 1000)}"
    if "keepalives" not in url.query:  # notice a server that vanished in the middle of a statement
        args.update(keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
    return args


def _sqlite_setup(engine: Engine) -> None:

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, open transactions, and open them as writers at once:
        # a claim or a completion must never have to upgrade a read lock (that is how SQLite deadlocks).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Reads (minimap/store/reads.py) begin deferred: a WAL reader neither waits for the writer nor blocks it,
        # and never upgrades its lock, so a page of the web UI never holds up a claim.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def make_engine(url: str | None = None) -> Engine:
    """An engine for `url` (see `resolve_url`), checked for a usable driver."""
    url = resolve_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(
            f"invalid database URL {mask(url)!r}: expected e.g. postgresql+psycopg://user@host/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise DatabaseError(f"unsupported database {backend!r} in {mask(url)}: use sqlite or postgresql+psycopg")
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        if backend == "sqlite":
            _sqlite_folder(parsed.database)
            engine = create_engine(parsed, connect_args={"timeout": 60})
            _sqlite_setup(engine)
        else:
            # No pre-ping: it costs a round trip per transaction. A dropped connection fails its statement
            # instead, the pool discards it, and the loops retry with backoff on a fresh one.
            engine = create_engine(parsed, pool_size=5, max_overflow=5, connect_args=_postgres_args(parsed))
    except (NoSuchModuleError, ImportError) as e:
        hint = " (install it with: pip install 'minimap[postgres]')" if backend == "postgresql" else ""
        raise DatabaseError(f"no driver for {mask(url)}: {e}{hint}") from None
    _engines.add(engine)
    return engine


def migrations_dir() -> str:
    """Where the Alembic scripts are: inside the installed package (a wheel or an sdist install), else
    alembic/ beside the package (a source checkout or an editable install). Missing: a DatabaseError."""
    spec = importlib.util.find_spec("minimap._migrations")
    places = list(spec.submodule_search_locations or []) if spec else []
    places.append(str(Path(__file__).resolve().parents[2] / "alembic"))
    for place in places:
        env = Path(place) / "env.py"
        # The marker keeps us from mistaking another "alembic" folder (the library's own) for ours.
        if env.is_file() and (Path(place) / "versions").is_dir() and "minimap" in env.read_text():
            return place
    raise DatabaseError(
        f"minimap's schema migrations are missing from this installation (looked in {', '.join(places)}): "
        "reinstall minimap (pip install --force-reinstall minimap)"
    )


def _alembic_config(connection: Any = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir())
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise DatabaseError(f"no schema migrations found in {migrations_dir()}: reinstall minimap")
    return head


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {r.revision for r in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> bool:
    """Bring the schema to the newest revision; True if anything was applied. Safe to run concurrently."""
    from alembic import command

    head = head_revision()
    try:
        current = current_revision(engine)
        if current == head:
            return False
        if current is not None and current not in _known_revisions():
            raise DatabaseRefused(
                f"database {mask(str(engine.url))} has schema revision {current!r}, which this minimap does not "
                f"know (its newest is {head!r}): a newer minimap wrote it; upgrade minimap"
            )
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()
            try:
                command.upgrade(_alembic_config(conn), "head")
                conn.commit()
            finally:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                    conn.commit()
    except SQLAlchemyError as e:
        raise DatabaseError(f"cannot use database {mask(str(engine.url))}: {short(e)}") from None
    log.info("database %s upgraded to %s", mask(str(engine.url)), head)
    return True


def connect(url: str | None = None, migrate: bool = True) -> Engine:
    """An engine on an up-to-date schema; every failure is a one-line DatabaseError."""
    engine = make_engine(url)
    if migrate:
        upgrade(engine)
    else:
        try:
            with engine.connect():
                pass
        except SQLAlchemyError as e:
            raise DatabaseError(f"cannot connect to {mask(url or resolve_url(None))}: {short(e)}") from None
    return engine


def _forget_engines_in_child() -> None:
    # A forked process must not touch its parent's pooled connections (SQLAlchemy's pooling guide).
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_engines_in_child)
