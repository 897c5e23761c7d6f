"""``Database``: the engine, its connection settings and the unit of work."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast
from uuid import uuid4

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, ExceptionContext, ExecutionContext, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import _sqlite_driver
from datalayer.errors import (
    DatabaseUnavailableError,
    InvalidDataError,
    ReadOnlyError,
    UsageError,
    classify,
    raise_translated,
    translate_errors,
)
from datalayer.models import metadata
from datalayer.observability import (
    DEFAULT_SLOW_QUERY_SECONDS,
    SlowQueryLog,
    check_slow_query_seconds,
    log_failed_unit,
    watch_slow_queries,
)

if TYPE_CHECKING:
    import aiosqlite

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_SQLITE_CACHE_MIB",
    "ENV_VAR",
    "PGBOUNCER_ENV_VAR",
    "Database",
    "Settings",
    "resolve_url",
]

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
#: Seconds the client waits for one PostgreSQL statement unless ``command_timeout`` says otherwise.
DEFAULT_COMMAND_TIMEOUT = 60.0
#: MiB of page cache per SQLite connection unless ``sqlite_cache_mib`` says otherwise.
DEFAULT_SQLITE_CACHE_MIB = 64


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


@dataclass(frozen=True, slots=True)
class Settings:
    """The connection settings of a ``Database`` (see its docstring for each one)."""

    echo: bool = False
    connect_timeout: float = 10.0
    sqlite_busy_timeout: float = 30.0
    sqlite_cache_mib: int | None = DEFAULT_SQLITE_CACHE_MIB
    sqlite_mmap_mib: int | None = None
    pgbouncer: bool = False
    pool_pre_ping: bool = False
    statement_timeout: float | None = None
    command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT
    slow_query_seconds: float | None = DEFAULT_SLOW_QUERY_SECONDS
    #: Passed on to :func:`sqlalchemy.ext.asyncio.create_async_engine`.
    engine_options: Mapping[str, object] = field(default_factory=dict[str, object])


class Database:
    """An async engine plus a unit-of-work factory, for SQLite (aiosqlite) or PostgreSQL (asyncpg).

    ``url`` defaults to ``$DATALAYER_DATABASE_URL``, else ``sqlite+aiosqlite:///./datalayer.db``.

    - ``connect_timeout``: seconds before an unreachable server raises ``DatabaseUnavailableError``.
    - ``sqlite_busy_timeout``: seconds a SQLite writer waits for the write lock.
    - ``sqlite_cache_mib``: page cache of each SQLite connection to a file, in MiB
      (``PRAGMA cache_size``; default 64, taken only as pages are read; ``None`` keeps SQLite's
      2 MiB). At 1,000,000 templates ``search_by_tags`` read 13 ms with 64 MiB, 23 ms with 2.
    - ``sqlite_mmap_mib``: memory-mapped I/O per SQLite connection, in MiB (``PRAGMA
      mmap_size``; default ``None``, off: 256 MiB measured no faster than the 64 MiB cache).
    - ``pgbouncer``: set when connecting through pgbouncer in transaction pooling mode; it
      turns off asyncpg's prepared-statement cache and names statements uniquely. Left
      unset, ``$DATALAYER_PGBOUNCER`` (``1``/``true``) decides, so deployments can switch it
      without code changes.
    - ``pool_pre_ping``: test each pooled connection before use (one extra round trip per
      unit of work, in exchange for never handing out a connection the server dropped).
    - ``statement_timeout``: seconds a PostgreSQL statement may run before the server
      cancels it (``DatabaseUnavailableError``); through pgbouncer set it on the role instead
      (``ALTER ROLE app SET statement_timeout = '5s'``), pgbouncer drops startup settings.
    - ``command_timeout``: seconds the client waits for any one PostgreSQL statement
      (default 60, None for no limit); past it the connection is dropped and the unit fails
      with ``DatabaseUnavailableError``. It bounds what ``statement_timeout`` cannot: a
      frozen server or a dead network path.
    - ``replica_url``: a read replica; ``session(read_only=True)`` units of work go there.
      Read-only units refuse writes on every backend (``ReadOnlyError``), so code that
      works against one database keeps working when a replica is added.
    - ``autocommit_reads``: on PostgreSQL, read-only units run without BEGIN and COMMIT,
      each statement its own transaction, on their own pool of connections whose
      transactions are read-only (``default_transaction_read_only``): two round trips fewer
      per unit, half the time of a one-statement read. Under READ COMMITTED (PostgreSQL's
      default) each statement sees the same rows it would inside one transaction; what
      differs is that transaction-scoped locks (``pg_advisory_xact_lock``) end with their
      statement. Not applied through pgbouncer or with an ``isolation_level`` engine option;
      ``False`` keeps one ``BEGIN READ ONLY`` transaction per unit on the write pool.
    - ``slow_query_seconds``: statements taking at least this long are logged as WARNING on
      the ``datalayer.sql.slow`` logger, without their parameters (``None`` turns it off);
      see ``datalayer.observability``.
    - any other keyword goes to :func:`sqlalchemy.ext.asyncio.create_async_engine`.

    On SQLite every connection gets ``foreign_keys=ON``, WAL journaling for files and a
    busy timeout, and write units of work start with ``BEGIN IMMEDIATE`` so that
    concurrent writers queue for the lock instead of failing on upgrade. An in-memory
    SQLite database is one shared connection: its units of work run one at a time.

    A ``Database`` belongs to one event loop at a time: used from a second loop while the
    first is still open (another thread), it raises ``UsageError``; after the first loop
    closed (consecutive ``asyncio.run()`` calls) it drops the old loop's connections and
    carries on.
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        echo: bool = False,
        connect_timeout: float = 10.0,
        sqlite_busy_timeout: float = 30.0,
        sqlite_cache_mib: int | None = DEFAULT_SQLITE_CACHE_MIB,
        sqlite_mmap_mib: int | None = None,
        pgbouncer: bool | None = None,
        pool_pre_ping: bool = False,
        replica_url: str | URL | None = None,
        statement_timeout: float | None = None,
        command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
        slow_query_seconds: float | None = DEFAULT_SLOW_QUERY_SECONDS,
        autocommit_reads: bool = True,
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
        for name, seconds in (
            ("connect_timeout", connect_timeout),
            ("sqlite_busy_timeout", sqlite_busy_timeout),
            ("statement_timeout", statement_timeout),
            ("command_timeout", command_timeout),
        ):
            if seconds is not None and (isinstance(seconds, bool) or not 0 < seconds < 10**7):
                raise InvalidDataError.for_field(name, seconds, "must be a positive number of seconds")
        for name, mib in (("sqlite_cache_mib", sqlite_cache_mib), ("sqlite_mmap_mib", sqlite_mmap_mib)):
            if mib is not None and not (_is_int(mib) and 0 <= mib <= 2**20):
                raise InvalidDataError.for_field(name, mib, "must be None or a whole number of MiB <= 2**20")
        self.settings = Settings(
            echo=echo,
            connect_timeout=connect_timeout,
            sqlite_busy_timeout=sqlite_busy_timeout,
            sqlite_cache_mib=sqlite_cache_mib,
            sqlite_mmap_mib=sqlite_mmap_mib,
            pgbouncer=pgbouncer,
            pool_pre_ping=pool_pre_ping,
            statement_timeout=statement_timeout,
            command_timeout=command_timeout,
            slow_query_seconds=slow,
            engine_options=dict(engine_options),
        )
        # SQLite connections being closed after a failure, until their ROLLBACK has run.
        self._closing: set[asyncio.Future[None]] = set()
        self.engine = self._make_engine(self.url, "primary")
        self.replica_url = resolve_url(replica_url) if replica_url is not None else None
        autocommit = (
            autocommit_reads
            and self.url.get_backend_name() == "postgresql"
            and not pgbouncer
            and "isolation_level" not in engine_options
        )
        self.replica_engine = (
            self._make_engine(
                self.replica_url,
                "replica",
                reads=autocommit and self.replica_url.get_backend_name() == "postgresql",
            )
            if self.replica_url
            else None
        )
        #: The engine read-only units use: the replica's, else (autocommit reads) a second
        #: pool to the primary, else the primary's.
        self.read_engine = self.replica_engine or (
            self._make_engine(self.url, "primary", reads=True) if autocommit else self.engine
        )
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, sync_session_class=_UnitSession, expire_on_commit=False
        )
        read_options: dict[str, object] = {_READ_ONLY: True}
        if self.read_engine.dialect.name == "postgresql" and not autocommit:
            # BEGIN READ ONLY in the same round trip: the server refuses writes even
            # when they bypass the ORM, exactly as a hot standby would.
            read_options["postgresql_readonly"] = True
        self._read_sessions = async_sessionmaker(
            self.read_engine.execution_options(**read_options),
            class_=AsyncSession,
            sync_session_class=_ReadOnlySyncSession,
            expire_on_commit=False,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        # In-memory SQLite is one connection (StaticPool): units must take turns on it.
        self._serialize = _is_memory(self.url)
        self._turn: asyncio.Lock | None = None
        self._turn_holder: ContextVar[bool] = ContextVar(f"datalayer_turn_{id(self)}", default=False)

    @property
    def backend(self) -> str:
        """Return ``"sqlite"`` or ``"postgresql"``."""
        return self.url.get_backend_name()

    def engines(self) -> list[tuple[str, AsyncEngine]]:
        """Return every engine of this Database with its role (``primary`` or ``replica``)."""
        found = [("primary", self.engine)]
        if self.replica_engine is not None:
            found.append(("replica", self.replica_engine))
        elif self.read_engine is not self.engine:
            found.append(("primary", self.read_engine))
        return found

    def _make_engine(self, url: URL, role: str, *, reads: bool = False) -> AsyncEngine:
        """Return the engine for ``url`` with datalayer's connection settings and slow-query log.

        ``reads``: an engine for autocommit read-only units (PostgreSQL only).
        """
        settings = self.settings
        options = dict(settings.engine_options)
        if reads:
            options["isolation_level"] = "AUTOCOMMIT"
        given = cast("Mapping[str, Any]", options.pop("connect_args", None) or {})
        connect_args: dict[str, Any] = dict(given)
        if url.get_backend_name() == "postgresql":
            connect_args.setdefault("timeout", settings.connect_timeout)
            if settings.command_timeout is not None:
                connect_args.setdefault("command_timeout", settings.command_timeout)
            if settings.statement_timeout is not None:
                server_settings = dict(connect_args.get("server_settings") or {})
                server_settings["statement_timeout"] = str(max(1, round(settings.statement_timeout * 1000)))
                connect_args["server_settings"] = server_settings
            if settings.pgbouncer:
                # pgbouncer in transaction mode cannot keep prepared statements per client.
                connect_args["statement_cache_size"] = 0
                connect_args["prepared_statement_name_func"] = _unique_statement_name
                connect_args["prepared_statement_cache_size"] = 0
        else:
            connect_args.setdefault("timeout", settings.sqlite_busy_timeout)
            if url.get_driver_name() == "aiosqlite" and "module" not in options:
                options["module"] = _sqlite_driver.dbapi()
        engine = create_async_engine(
            url,
            echo=settings.echo,
            pool_pre_ping=settings.pool_pre_ping,
            connect_args=connect_args,
            **options,
        )
        if reads:
            event.listen(engine.sync_engine, "connect", _refuse_writes_on_connection)
            # Before the slow-query log's listener, which sends the statement itself.
            for name in ("do_execute", "do_execute_no_params"):
                event.listen(engine.sync_engine, name, _transaction_for_server_cursor)
            event.listen(engine.sync_engine, "checkin", _back_to_autocommit)
        slow = watch_slow_queries(engine, role=role, threshold=settings.slow_query_seconds)
        if url.get_backend_name() == "sqlite":
            _configure_sqlite(engine, url, self._closing, slow, _sqlite_pragmas(settings, url))
        else:
            event.listen(engine.sync_engine, "handle_error", _client_timeout_error)
        return engine

    def _check_loop(self) -> None:
        """Bind this Database to the running event loop, or raise UsageError if another loop owns it."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return  # the usual case, without taking the lock
        with self._loop_lock:
            owner = self._loop
            if owner is loop:
                return
            if owner is not None and not owner.is_closed():
                raise UsageError(
                    "this Database is in use by another event loop (another thread?); its connections "
                    "belong to that loop. Create one Database per event loop or thread."
                )
            if owner is not None:
                # The old loop is gone (asyncio.run() returned): its connections cannot be
                # closed from here, only forgotten. New ones are made for this loop.
                for _, engine in self.engines():
                    engine.sync_engine.dispose(close=False)
            self._loop = loop
            self._turn = None

    @asynccontextmanager
    async def session(self, *, read_only: bool = False) -> AsyncGenerator[AsyncSession]:
        """Yield a unit of work: committed on success, rolled back on any exception, always closed.

        ``read_only=True`` sends it to the replica when one is configured (and takes no
        write lock on SQLite); any INSERT, UPDATE, DELETE or flush in it raises
        ``ReadOnlyError``, with or without a replica, raw SQL included. SQLAlchemy and driver
        errors escaping the block come out as ``datalayer.errors`` (the original chained),
        like repository calls. Cancelled at any point, the unit releases its connection (and
        SQLite's write lock) before the cancellation propagates; nothing of it is stored,
        unless the cancellation arrived during COMMIT itself (then the commit completes).
        After the block the session refuses every use (``UsageError``).
        """
        self._check_loop()
        async with self._take_turn() if self._serialize else _NO_TURN:
            factory = self._read_sessions if read_only else self._sessions
            session = factory()
            try:
                yield session
                # Finished even if cancelled meanwhile, so the outcome is never half-known
                # to the pool; a cancellation is re-raised once the commit is done. Commit
                # and close share one task: a task per step cost a loop iteration each.
                await _to_completion(_commit_and_close(session))
            except BaseException as exc:
                await _to_completion(self._discard(session))
                translated = classify(exc) if isinstance(exc, Exception) else None
                if translated is not None and translated is not exc:
                    log_failed_unit(translated, backend=self.backend, read_only=read_only, cause=exc)
                else:
                    log_failed_unit(exc, backend=self.backend, read_only=read_only)
                raise_translated(exc)
            finally:
                session.sync_session.info[_ENDED] = True

    @asynccontextmanager
    async def _take_turn(self) -> AsyncGenerator[None, None]:
        """Hold the in-memory database's one connection for a unit of work (no-op elsewhere)."""
        if not self._serialize:
            yield
            return
        if self._turn_holder.get():
            raise UsageError(
                "a unit of work is already open in this task; an in-memory SQLite database is a single "
                "connection, so units cannot nest (use a SQLite file for concurrent units)"
            )
        if self._turn is None:
            self._turn = asyncio.Lock()
        async with self._turn:
            token = self._turn_holder.set(True)
            try:
                yield
            finally:
                self._turn_holder.reset(token)

    async def _discard(self, session: AsyncSession) -> None:
        """Close without committing (the pool rolls the connection back); drop it if that fails.

        Not ``session.rollback()``: that expires every loaded entity, and reading ``.id`` of
        one afterwards raised DetachedInstanceError. Closed this way, entities keep the values
        they had in the unit (detached; not in the database).
        """
        try:
            await session.close()
        except Exception as exc:  # the connection may already be gone; the original error matters more
            logger.warning("closing a failed unit of work failed: %s", type(exc).__name__)
            await session.invalidate()
        if self._closing:
            # A connection dropped mid-statement (cancelled) is released by the ROLLBACK queued
            # ahead of its close: wait for it, so the next writer finds the lock free.
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    def bound_to(self, connection: AsyncConnection) -> Database:
        """Return a Database whose units of work join ``connection``'s transaction (for tests).

        SQLAlchemy's "join an external transaction" recipe: each unit runs in a SAVEPOINT
        (``join_transaction_mode="create_savepoint"``), so its commit releases the savepoint
        and its rollback undoes only its own work; whoever owns ``connection`` rolls back
        everything at the end. The engine is shared with this Database, which keeps it.
        """
        joined = copy.copy(self)
        options: dict[str, Any] = {"expire_on_commit": False, "join_transaction_mode": "create_savepoint"}
        joined._sessions = async_sessionmaker(
            connection, class_=AsyncSession, sync_session_class=_UnitSession, **options
        )
        joined._read_sessions = async_sessionmaker(
            connection, class_=AsyncSession, sync_session_class=_ReadOnlySyncSession, **options
        )
        return joined

    async def session_dependency(self) -> AsyncGenerator[AsyncSession, None]:
        """Yield a unit of work; usable as a FastAPI dependency (``Depends(db.session_dependency)``)."""
        async with self.session() as session:
            yield session

    async def create_all(self) -> None:
        """Create every table and index of the models that does not exist yet."""
        self._check_loop()
        async with self._take_turn():
            with translate_errors():
                async with self.engine.begin() as conn:
                    await conn.run_sync(metadata.create_all)

    async def drop_all(self) -> None:
        """Drop every table of the models."""
        self._check_loop()
        async with self._take_turn():
            with translate_errors():
                async with self.engine.begin() as conn:
                    await conn.run_sync(metadata.drop_all)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        for _, engine in self.engines():
            await engine.dispose()

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


_ENDED = "datalayer_unit_ended"
_ENDED_MESSAGE = (
    "this unit of work has ended: its session cannot be used after the `async with db.session()` "
    "block (e.g. from a background task); open a new unit of work"
)


class _UnitSession(Session):
    """The synchronous session behind a unit of work: refuses every use once the unit ended."""

    def get_bind(self, *args: Any, **kwargs: Any) -> Any:
        """Return the engine for a statement; UsageError once the unit of work ended."""
        # Every execute, flush and connection() asks for a bind first: nothing is checked out.
        if self.info.get(_ENDED):
            raise UsageError(_ENDED_MESSAGE)
        return super().get_bind(*args, **kwargs)


@event.listens_for(_UnitSession, "before_attach")
def _refuse_attach_after_end(session: Session, instance: object) -> None:
    if session.info.get(_ENDED):
        raise UsageError(_ENDED_MESSAGE)


async def _commit_and_close(session: AsyncSession) -> None:
    """Commit the unit's session, then close it; errors as ``datalayer.errors``."""
    with translate_errors():
        await session.commit()
    await session.close()


# What a unit of work holds instead of a turn on databases that are not one shared connection.
_NO_TURN: AbstractAsyncContextManager[None] = nullcontext()


async def _to_completion(step: Coroutine[Any, Any, None]) -> None:
    """Run ``step`` to its end even if the caller is cancelled meanwhile; then re-raise the cancellation.

    A cleanup cut short by a cancellation (anyio cancels again at every await) would leave
    the connection, and on SQLite the write lock, to the garbage collector.
    """
    task = asyncio.ensure_future(step)
    cancelled: BaseException | None = None
    while True:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():
                raise
            cancelled = exc
        else:
            break
    if cancelled is not None:
        raise cancelled


class _ReadOnlySyncSession(_UnitSession):
    """The synchronous session behind read-only units of work: refuses every write."""


@event.listens_for(_ReadOnlySyncSession, "do_orm_execute")
def _refuse_dml(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlyError("cannot write in a read-only unit of work; use db.session() to write")


@event.listens_for(_ReadOnlySyncSession, "before_flush")
def _refuse_flush(session: Session, flush_context: Any, instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlyError("cannot write in a read-only unit of work; use db.session() to write")


def _refuse_writes_on_connection(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """Make every transaction of a new autocommit-reads connection read-only (raw SQL included).

    Set after connecting, not as a startup setting: asyncpg's ``target_session_attrs=read-write``
    would take a connection that starts read-only for a standby and refuse the primary.
    """

    def send(driver: Any) -> Awaitable[object]:
        return cast("Awaitable[object]", driver.execute("SET default_transaction_read_only = on"))

    dbapi_connection.run_async(send)


def _transaction_for_server_cursor(cursor: Any, statement: str, *rest: Any) -> None:
    """Let a streamed read (``stream``, ``yield_per``) open a transaction on an autocommit connection.

    asyncpg's server-side cursors exist only inside a transaction: the connection leaves
    autocommit before the statement (asyncpg then sends BEGIN), until it is checked in.
    """
    context: ExecutionContext = rest[-1]
    if context.execution_options.get("stream_results"):
        dbapi_connection = context.root_connection.connection.dbapi_connection
        if dbapi_connection is not None and dbapi_connection.autocommit:
            context.dialect.set_isolation_level(dbapi_connection, "READ COMMITTED")


def _back_to_autocommit(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """Return a read-pool connection that streamed (and so left autocommit) to autocommit."""
    if dbapi_connection is not None and not dbapi_connection.autocommit:
        # Checked in: its transaction has already ended, so nothing is sent.
        dbapi_connection.autocommit = True


def _unique_statement_name() -> str:
    return f"__datalayer_{uuid4().hex}__"


def _client_timeout_error(context: ExceptionContext) -> DatabaseUnavailableError | None:
    """Turn asyncpg's ``command_timeout`` (a bare TimeoutError) into DatabaseUnavailableError.

    The connection is dropped: its statement may still be running, or the server is frozen.
    """
    if not isinstance(context.original_exception, TimeoutError) or context.connection is None:
        return None
    context.is_disconnect = True
    context.invalidate_pool_on_disconnect = False  # only this connection is suspect
    return DatabaseUnavailableError(
        "no answer from the database server within command_timeout; the connection was dropped"
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or "mode=memory" in str(url.query)
    )


def _sqlite_pragmas(settings: Settings, url: URL) -> list[str]:
    """Return the cache PRAGMAs each connection to a SQLite file runs (none in memory)."""
    if _is_memory(url):
        return []
    pragmas: list[str] = []
    if settings.sqlite_cache_mib is not None:
        pragmas.append(f"PRAGMA cache_size=-{int(settings.sqlite_cache_mib) * 1024}")  # negative: KiB
    if settings.sqlite_mmap_mib is not None:
        pragmas.append(f"PRAGMA mmap_size={int(settings.sqlite_mmap_mib) * 2**20}")
    return pragmas


def _configure_sqlite(
    engine: AsyncEngine,
    url: URL,
    closing: set[asyncio.Future[None]],
    slow: SlowQueryLog | None,
    pragmas: list[str],
) -> None:
    """Install the per-connection pragmas and the explicit BEGIN that SQLite needs.

    The busy timeout is sqlite3's ``timeout`` connect argument. ``closing`` collects the
    rollbacks queued ahead of closes, for the unit of work to wait on; ``slow`` times the
    BEGIN (a writer waiting for the lock is a slow ``BEGIN IMMEDIATE``).
    """
    in_memory = _is_memory(url)

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
            for pragma in pragmas:  # integers checked by Database(), no user text
                cursor.execute(pragma)
        finally:
            cursor.close()
        record.info[_QUERY_ONLY] = False

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = bool(conn.get_execution_options().get(_READ_ONLY, False))
        dbapi_connection: object = conn.connection.dbapi_connection
        if isinstance(dbapi_connection, _sqlite_driver.OneTripConnection):
            dbapi_connection.begin(read_only=read_only)  # sent with the unit's first statement
            return
        # A user's own DBAPI module (``module=``): the same statements, sent now.
        info = conn.connection.info
        if info.get(_QUERY_ONLY) != read_only:
            # The database itself refuses writes in read-only units, raw SQL included;
            # switched back by the next write unit on this connection.
            _run_sqlite(conn, "PRAGMA query_only=ON" if read_only else "PRAGMA query_only=OFF", slow)
            info[_QUERY_ONLY] = read_only
        # A writer must hold the lock from the start: a deferred transaction that reads
        # and then writes fails with SQLITE_BUSY instead of waiting.
        _run_sqlite(conn, "BEGIN" if read_only else "BEGIN IMMEDIATE", slow)

    @event.listens_for(engine.sync_engine, "close")
    def _on_close(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        _rollback_before_close(dbapi_connection, closing)

    @event.listens_for(engine.sync_engine, "close_detached")
    def _on_close_detached(dbapi_connection: Any) -> None:
        _rollback_before_close(dbapi_connection, closing)


_QUERY_ONLY = "datalayer_query_only"


def _run_sqlite(conn: Connection, statement: str, slow: SlowQueryLog | None) -> None:
    """Send a parameterless statement on aiosqlite's thread in one trip; errors as SQLAlchemy's.

    Not ``exec_driver_sql``: SQLAlchemy's own aiosqlite cursor takes three trips (create,
    execute, close) and ~200 Python calls, once per unit of work.
    """

    def send(driver: aiosqlite.Connection) -> Awaitable[object]:
        return driver.execute(statement)

    dbapi_connection: Any = conn.connection.dbapi_connection  # checked out, so open
    started = time.perf_counter()
    try:
        dbapi_connection.run_async(send)
    except sqlite3.Error as error:
        if slow is not None:
            slow.check(started, statement, error)
        raise DBAPIError.instance(statement, None, error, sqlite3.Error) from error
    except ValueError:
        # aiosqlite's "no active connection": nothing was sent. SQLAlchemy's cursor path turns
        # it into a disconnect (the pooled connection is invalidated), as it always did.
        conn.exec_driver_sql(statement)
    if slow is not None:
        slow.check(started, statement, None)


def _rollback_before_close(dbapi_connection: Any, closing: set[asyncio.Future[None]]) -> None:
    """Queue a ROLLBACK ahead of the close of an aiosqlite connection; return at once.

    A statement cut short by a cancellation stays unfinalized until the garbage collector
    frees its cursor, and sqlite3's close leaves such a connection open, its transaction and
    the write lock with it. aiosqlite runs calls on its thread in order, so a ROLLBACK queued
    now runs before the close that follows, and needs no await that could be cancelled.
    """
    worker = getattr(dbapi_connection, "_connection", None)  # the aiosqlite.Connection
    queue = getattr(worker, "_tx", None)
    raw = getattr(worker, "_connection", None)  # the sqlite3.Connection, None once closed
    if queue is None or not isinstance(raw, sqlite3.Connection):
        return

    def rollback() -> None:
        try:
            if raw.in_transaction:
                raw.rollback()
        except sqlite3.Error as exc:
            logger.warning("rollback before close failed: %s", exc)

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # garbage collection outside the loop: sqlite3 rolls back on its own close
        return
    future: asyncio.Future[None] = loop.create_future()
    closing.add(future)
    future.add_done_callback(closing.discard)
    queue.put_nowait((future, rollback))
