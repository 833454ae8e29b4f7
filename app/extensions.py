"""Flask extensions, created here and bound to the app in create_app()."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()
limiter = Limiter(key_func=get_remote_address)


@sa.event.listens_for(sa.Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


_writing: ContextVar[bool] = ContextVar("writing", default=False)


@contextmanager
def writing_transaction() -> Iterator[None]:
    """Transactions begun in the block are going to write. On SQLite they take the write lock
    at BEGIN (IMMEDIATE), waiting their turn behind another writer: a transaction that read
    first and then found the lock taken could only fail, its snapshot out of date once the
    other writer commits. PostgreSQL needs nothing of the kind."""
    token = _writing.set(True)
    try:
        yield
    finally:
        _writing.reset(token)


@sa.event.listens_for(sa.Engine, "begin")
def _sqlite_begin(conn: sa.Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _writing.get() else "BEGIN")


# A pooled connection unused for longer than this is pinged before it is used again.
PING_AFTER_IDLE_SECONDS = 1.0


@sa.event.listens_for(sa.pool.Pool, "checkin")
def _note_return(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info["returned_at"] = time.monotonic()


@sa.event.listens_for(sa.Engine, "engine_connect")
def _ping_after_idle(connection: sa.Connection) -> None:
    """Ping a pooled connection before use only when it sat unused for a while.

    A database restart or an idle timeout drops connections while they wait in the pool, and
    a ping before use finds them. SQLAlchemy's `pool_pre_ping` pings at every checkout: a
    round trip per request, as costly as a small query, while under load a connection comes
    back into use within milliseconds. A connection that fails in that short time fails its
    request, and SQLAlchemy then replaces every connection in the pool."""
    if connection.dialect.name == "sqlite":  # a file: nothing to drop
        return
    pooled = connection.connection
    returned_at = pooled.info.get("returned_at")
    if returned_at is None or time.monotonic() - returned_at < PING_AFTER_IDLE_SECONDS:
        return
    if pooled.dbapi_connection is None:  # already invalidated: the next use reconnects
        return
    try:
        connection.dialect.do_ping(pooled.dbapi_connection)
    except connection.dialect.loaded_dbapi.Error:
        connection.invalidate()  # the next use takes a new connection
