"""Engine creation and schema migration.

SQLite (the zero-setup default) runs in WAL mode with foreign keys on, so
readers never block the writer and dataset references are enforced by the
database itself. PostgreSQL is used as is, through the same code.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full
_SQLITE_CANTOPEN = 14
# admin_shutdown, crash_shutdown, cannot_connect_now (a server starting or stopping).
_PG_UNAVAILABLE = ("57P01", "57P02", "57P03")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # Sorts too large for memory (a dataset build's windows) merge on a helper
    # thread: a 5M-item build 123 s -> 85 s, for ~20 MB more while it sorts.
    cur.execute("PRAGMA threads=2")
    cur.close()


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'tunixrt.db'}"


def create_engine(url: str, *, pool_size: int = 16) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
    )


@contextmanager
def copying_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction for INSERT … SELECT of rows whose references come from
    the tables they reference, read in that same transaction: SQLite lets one
    writer in, so nothing can delete them meanwhile, and its per-row foreign-key
    lookups (one random read per row, a third of a 1M-item build) are skipped.
    PostgreSQL checks as usual. The connection goes back to the pool with checks
    on, or not at all."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction
            conn.commit()
        try:
            with conn.begin():
                yield conn
        finally:
            if sqlite:
                try:
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()
                except BaseException:
                    conn.invalidate()
                    raise


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision` (idempotent; run at every start)."""
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    with sa.create_engine("sqlite://").connect() as connection:
        return ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what it wraps (SQLAlchemy's .orig) or was raised from."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__


def database_unreachable(exc: BaseException) -> bool:
    """The database cannot be reached: a connection refused or lost (PostgreSQL's
    SQLSTATE class 08, an administrator's shutdown, a server still starting, or
    psycopg's OperationalError with no SQLSTATE, which is how a refused connect
    fails), or a SQLite file that cannot be opened. Not a lock wait past its
    timeout, nor a full disk: those have their own answers."""
    for seen in causes(exc):
        if isinstance(seen, sa.exc.DBAPIError) and seen.connection_invalidated:
            return True
        if getattr(seen, "sqlite_errorcode", None) == _SQLITE_CANTOPEN:
            return True
        kind = type(seen)
        if kind.__module__.startswith("psycopg"):
            sqlstate = getattr(seen, "sqlstate", None)
            if sqlstate is None and kind.__name__ == "OperationalError":
                return True
            if sqlstate and (sqlstate.startswith("08") or sqlstate in _PG_UNAVAILABLE):
                return True
    return False


def describe_url(url: str) -> str:
    """A database URL fit for an error message: no password."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def disk_full(exc: BaseException) -> bool:
    """The database or the data dir ran out of space: SQLite's SQLITE_FULL,
    PostgreSQL's disk_full, or ENOSPC from a file write (through the cause chain)."""
    for seen in causes(exc):
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if getattr(seen, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if getattr(seen, "sqlstate", None) == _PG_DISK_FULL:
            return True
    return False
