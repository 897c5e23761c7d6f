"""``Database``: the engine, its connection settings and the unit of work."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any
from uuid import uuid4

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer.errors import InvalidDataError, ReadOnlyError, classify, translate_errors
from datalayer.models import metadata
from datalayer.observability import (
    DEFAULT_SLOW_QUERY_SECONDS,
    check_slow_query_seconds,
    log_failed_unit,
    watch_slow_queries,
)

__all__ = ["DEFAULT_DATABASE_URL", "ENV_VAR", "PGBOUNCER_ENV_VAR", "Database", "resolve_url"]

logger = logging.getLogger(__name__)

#: Environment variable read when no URL is given.
ENV_VAR = "DATALAYER_DATABASE_URL"
#: Environment variable that turns on the pgbouncer settings when ``pgbouncer`` is not given.
PGBOUNCER_ENV_VAR = "DATALAYER_PGBOUNCER"
#: The embedded default: a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./datalayer.db"

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
_READ_ONLY = "datalayer_read_only"


def resolve_url(url: str | URL | None = None) -> URL:
    """Return the URL to use: the argument, else ``$DATALAYER_DATABASE_URL``, else the SQLite default.

    A URL without an async driver (``postgresql://``, ``sqlite://``) gets asyncpg or aiosqlite.
    """
    raw = url if url is not None else os.environ.get(ENV_VAR) or DEFAULT_DATABASE_URL
    try:
        parsed = make_url(raw)
    except ArgumentError as exc:
        raise InvalidDataError.for_field("url", _hide_password(str(raw)), "not a database URL") from exc
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is not None:
        parsed = parsed.set(drivername=driver)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidDataError.for_field(
            "url", parsed.render_as_string(hide_password=True), "only SQLite and PostgreSQL are supported"
        )
    return parsed


def _hide_password(raw: str) -> str:
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


class Database:
    """An async engine plus a unit-of-work factory, for SQLite (aiosqlite) or PostgreSQL (asyncpg).

    ``url`` defaults to ``$DATALAYER_DATABASE_URL``, else ``sqlite+aiosqlite:///./datalayer.db``.

    - ``connect_timeout``: seconds before an unreachable server raises ``DatabaseUnavailableError``.
    - ``sqlite_busy_timeout``: seconds a SQLite writer waits for the write lock.
    - ``pgbouncer``: set when connecting through pgbouncer in transaction pooling mode; it
      turns off asyncpg's prepared-statement cache and names statements uniquely. Left
      unset, ``$DATALAYER_PGBOUNCER`` (``1``/``true``) decides, so deployments can switch it
      without code changes.
    - ``pool_pre_ping``: test each pooled connection before use (one extra round trip per
      unit of work, in exchange for never handing out a connection the server dropped).
    - ``statement_timeout``: seconds a PostgreSQL statement may run before the server
      cancels it (``DatabaseUnavailableError``); through pgbouncer set it on the role instead
      (``ALTER ROLE app SET statement_timeout = '5s'``), pgbouncer drops startup settings.
    - ``replica_url``: a read replica; ``session(read_only=True)`` units of work go there.
      Read-only units refuse writes on every backend (``ReadOnlyError``), so code that
      works against one database keeps working when a replica is added.
    - ``slow_query_seconds``: statements taking at least this long are logged as WARNING on
      the ``datalayer.sql.slow`` logger, without their parameters (``None`` turns it off);
      see ``datalayer.observability``.
    - any other keyword goes to :func:`sqlalchemy.ext.asyncio.create_async_engine`.

    On SQLite every connection gets ``foreign_keys=ON``, WAL journaling for files and a
    busy timeout, and write units of work start with ``BEGIN IMMEDIATE`` so that
    concurrent writers queue for the lock instead of failing on upgrade.
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        echo: bool = False,
        connect_timeout: float = 10.0,
        sqlite_busy_timeout: float = 30.0,
        pgbouncer: bool | None = None,
        pool_pre_ping: bool = False,
        replica_url: str | URL | None = None,
        statement_timeout: float | None = None,
        slow_query_seconds: float | None = DEFAULT_SLOW_QUERY_SECONDS,
        **engine_options: object,
    ) -> None:
        self.url = resolve_url(url)
        slow = check_slow_query_seconds(slow_query_seconds)
        if pgbouncer is None:
            pgbouncer = os.environ.get(PGBOUNCER_ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")
        if pgbouncer and statement_timeout is not None:
            raise InvalidDataError.for_field(
                "statement_timeout",
                statement_timeout,
                "pgbouncer drops startup settings; set statement_timeout on the database role",
            )
        self._settings: dict[str, Any] = {
            "echo": echo,
            "connect_timeout": connect_timeout,
            "sqlite_busy_timeout": sqlite_busy_timeout,
            "pgbouncer": pgbouncer,
            "pool_pre_ping": pool_pre_ping,
            "statement_timeout": statement_timeout,
            **engine_options,
        }
        self.engine = self._make_engine(self.url)
        self.replica_url = resolve_url(replica_url) if replica_url is not None else None
        self.replica_engine = self._make_engine(self.replica_url) if self.replica_url else None
        watch_slow_queries(self.engine, role="primary", threshold=slow)
        if self.replica_engine is not None:
            watch_slow_queries(self.replica_engine, role="replica", threshold=slow)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        read_engine = self.replica_engine or self.engine
        read_options: dict[str, Any] = {_READ_ONLY: True}
        if read_engine.dialect.name == "postgresql":
            # BEGIN READ ONLY in the same round trip: the server refuses writes even
            # when they bypass the ORM, exactly as a hot standby would.
            read_options["postgresql_readonly"] = True
        self._read_sessions = async_sessionmaker(
            read_engine.execution_options(**read_options),
            class_=AsyncSession,
            sync_session_class=_ReadOnlySyncSession,
            expire_on_commit=False,
        )

    @property
    def backend(self) -> str:
        """Return ``"sqlite"`` or ``"postgresql"``."""
        return self.url.get_backend_name()

    def _make_engine(self, url: URL) -> AsyncEngine:
        settings = dict(self._settings)
        connect_timeout = float(settings.pop("connect_timeout"))
        busy_timeout = float(settings.pop("sqlite_busy_timeout"))
        pgbouncer = bool(settings.pop("pgbouncer"))
        statement_timeout = settings.pop("statement_timeout")
        connect_args: dict[str, Any] = dict(settings.pop("connect_args", None) or {})
        if url.get_backend_name() == "postgresql":
            connect_args.setdefault("timeout", connect_timeout)
            if statement_timeout is not None:
                server_settings = dict(connect_args.get("server_settings") or {})
                server_settings["statement_timeout"] = str(max(1, round(float(statement_timeout) * 1000)))
                connect_args["server_settings"] = server_settings
            if pgbouncer:
                # pgbouncer in transaction mode cannot keep prepared statements per client.
                connect_args["statement_cache_size"] = 0
                connect_args["prepared_statement_name_func"] = _unique_statement_name
                connect_args["prepared_statement_cache_size"] = 0
        else:
            connect_args.setdefault("timeout", busy_timeout)
        engine = create_async_engine(url, connect_args=connect_args, **settings)
        if url.get_backend_name() == "sqlite":
            _configure_sqlite(engine, url)
        return engine

    @asynccontextmanager
    async def session(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """Yield a unit of work: committed on success, rolled back on any exception, always closed.

        ``read_only=True`` sends it to the replica when one is configured (and takes no
        write lock on SQLite); any INSERT, UPDATE, DELETE or flush in it raises
        ``ReadOnlyError``, with or without a replica. SQLAlchemy and driver errors escaping
        the block come out as ``datalayer.errors`` (the original chained), like repository calls.
        """
        factory = self._read_sessions if read_only else self._sessions
        async with factory() as session:
            try:
                yield session
                with translate_errors():
                    await session.commit()
            except SQLAlchemyError as exc:
                # Raw SQL in the unit fails like repository calls do: with a datalayer error.
                await _rollback_quietly(session)
                translated = classify(exc)
                log_failed_unit(translated or exc, backend=self.backend, read_only=read_only, cause=exc)
                if translated is None:
                    raise
                raise translated from exc
            except BaseException as exc:
                await _rollback_quietly(session)
                log_failed_unit(exc, backend=self.backend, read_only=read_only)
                raise

    async def session_dependency(self) -> AsyncGenerator[AsyncSession, None]:
        """Yield a unit of work; usable as a FastAPI dependency (``Depends(db.session_dependency)``)."""
        async with self.session() as session:
            yield session

    async def create_all(self) -> None:
        """Create every table and index of the models that does not exist yet."""
        with translate_errors():
            async with self.engine.begin() as conn:
                await conn.run_sync(metadata.create_all)

    async def drop_all(self) -> None:
        """Drop every table of the models."""
        with translate_errors():
            async with self.engine.begin() as conn:
                await conn.run_sync(metadata.drop_all)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.replica_engine is not None:
            await self.replica_engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"


class _ReadOnlySyncSession(Session):
    """The synchronous session behind read-only units of work: refuses every write."""


@event.listens_for(_ReadOnlySyncSession, "do_orm_execute")
def _refuse_dml(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlyError("cannot write in a read-only unit of work; use db.session() to write")


@event.listens_for(_ReadOnlySyncSession, "before_flush")
def _refuse_flush(session: Session, flush_context: Any, instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlyError("cannot write in a read-only unit of work; use db.session() to write")


async def _rollback_quietly(session: AsyncSession) -> None:
    """Roll back, logging (not raising) a failure: the original exception matters more."""
    try:
        await session.rollback()
    except Exception as exc:  # the connection may already be gone
        logger.warning("rollback failed after an error: %s", type(exc).__name__)


def _unique_statement_name() -> str:
    return f"__datalayer_{uuid4().hex}__"


def _configure_sqlite(engine: AsyncEngine, url: URL) -> None:
    """Install the per-connection pragmas and the explicit BEGIN that SQLite needs.

    The busy timeout is sqlite3's ``timeout`` connect argument.
    """
    in_memory = url.database in (None, "", ":memory:") or "mode=memory" in str(url.query)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin
        # (otherwise SAVEPOINTs and BEGIN IMMEDIATE do not work).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer must hold the lock from the start: a deferred transaction that reads
        # and then writes fails with SQLITE_BUSY instead of waiting.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
