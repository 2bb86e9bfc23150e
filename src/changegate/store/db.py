"""Engines and migrations: one code path for the embedded SQLite file and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from changegate.errors import InvalidInput, TemporaryError

MIGRATIONS = Path(__file__).parent / "migrations"
WRITE_OPTION = "changegate_write"


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One write transaction: committed when the block ends, rolled back on any error."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection


def display_url(url: str) -> str:
    """A database URL fit for logs and messages: the password is masked."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "<unparseable database URL>"


def make_engine(url: str, *, echo: bool = False) -> sa.Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and write-locking transactions."""
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        # The message names the problem, never the URL (it may carry a password).
        raise InvalidInput(
            f"CHANGEGATE_DATABASE_URL is not a database URL: {type(exc).__name__}"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo=echo)
    if parsed.get_backend_name() != "postgresql":
        raise InvalidInput(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://"
        )
    return sa.create_engine(parsed, echo=echo, pool_pre_ping=True)


def _sqlite_engine(url: sa.URL, *, echo: bool) -> sa.Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, echo=echo, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Writers (see `transaction`) take the write lock up front with IMMEDIATE, so two
        # writers queue instead of one failing half-way with "database is locked" after it
        # read stale data. Readers begin deferred: in WAL mode they never block a writer.
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")

    return engine


def _config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine) -> str | None:
    """Bring the schema to the newest revision; returns the revision now current."""
    try:
        with transaction(engine) as connection:
            command.upgrade(_config(connection), "head")
            return MigrationContext.configure(connection).get_current_revision()
    except sa.exc.OperationalError as exc:
        raise TemporaryError(f"cannot reach the database: {exc.orig}") from exc


def head_revision() -> str | None:
    script = ScriptDirectory(str(MIGRATIONS))
    return script.get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: sa.Engine) -> bool:
    """True when the schema is at the newest revision."""
    return current_revision(engine) == head_revision()
