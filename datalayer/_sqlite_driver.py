"""aiosqlite with one trip to its thread per statement, where SQLAlchemy's adapter makes four.

aiosqlite runs every sqlite3 call on one worker thread per connection, and each call is a
round trip to it (0.1 to 0.3 ms on this machine image: a thread wake-up and a loop wake-up).
SQLAlchemy's adapter cursor makes four per statement: create the cursor, execute, fetch
all rows, close. ``OneTripCursor`` does the four in one function on that thread, so a
statement costs one trip, and a statement cancelled midway still has its cursor closed
(nothing left unfinalized for the garbage collector).

A unit of work's ``BEGIN`` (and ``PRAGMA query_only`` when the connection switches between
read-only and write units) is queued by ``OneTripConnection.begin`` and sent in the trip of
its first statement, and the pool's rollback on return is skipped after a commit: a
one-statement unit is two trips (the statement, COMMIT) where the hand-written recipe makes
nine. Streamed results keep SQLAlchemy's server-side cursor (the BEGIN goes first, on its own).

``Database`` passes ``dbapi()`` as ``create_async_engine(module=...)`` (SQLAlchemy's public
way to supply a DBAPI module) for ``sqlite+aiosqlite`` URLs.

The private API datalayer uses lives here: SQLAlchemy's aiosqlite adapter classes (used as
base classes, their ``_connection``/``_cursor``/``_rows``/``_execute_mutex`` slots) and
aiosqlite's ``Connection._execute`` (run a function on the worker thread) and ``_conn``.
``tests/test_sqlite_driver.py`` fails loudly if either library changes them.
"""

# This module's job is those private APIs (see above); pyright strict reports each use,
# so that one check is off here and nowhere else.
# pyright: reportPrivateUsage=false

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any, cast

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    AsyncAdapt_aiosqlite_ss_cursor,
)
from sqlalchemy.util import EMPTY_DICT

__all__ = ["OneTripConnection", "OneTripCursor", "OneTripStreamCursor", "dbapi"]


def _run(
    raw: sqlite3.Connection,
    pending: Sequence[str],
    began: list[bool],
    operation: str,
    parameters: Any,
    many: bool,
) -> tuple[sqlite3.Cursor, list[Any]]:
    """Return the closed sqlite3 cursor (for description, rowcount, lastrowid) and its rows.

    Runs on aiosqlite's thread: the unit of work's ``pending`` PRAGMA and BEGIN first (then
    ``began`` gets True), then create, execute, fetch and close in one call.
    """
    _run_all(raw, pending)
    began.append(True)
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
            rows: list[Any] = []
        else:
            cursor.execute(operation, () if parameters is None else parameters)
            rows = cursor.fetchall() if cursor.description else []
    finally:
        cursor.close()  # a closed cursor keeps description, rowcount and lastrowid
    return cursor, rows


def _run_all(raw: sqlite3.Connection, statements: Sequence[str]) -> None:
    """Run parameterless statements in order, closing each cursor; runs on aiosqlite's thread."""
    for statement in statements:
        raw.execute(statement).close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor, each statement one trip to aiosqlite's thread."""

    __slots__ = ()

    _awaitable_cursor_close = False  # nothing left to close: _run closed it on the thread

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # Not super().__init__: it makes a trip to create a cursor this class never uses.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = cast("Any", None)  # the last statement's closed sqlite3 cursor
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        """Run one statement and keep its rows; return None, as aiosqlite's execute is awaited for."""
        await self._trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        """Run one statement once per parameter set; return None."""
        await self._trip(operation, seq_of_parameters, many=True)

    async def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        driver: Any = self._connection  # an aiosqlite.Connection; _execute is untyped
        connection = cast("OneTripConnection", self._adapt_connection)
        connection.committed = False  # whatever the statement is, it may begin a transaction
        async with connection._execute_mutex:
            pending = connection.take_pending()
            began: list[bool] = []
            try:
                cursor, rows = await driver._execute(
                    _run, driver._conn, pending, began, operation, parameters, many
                )
            finally:
                connection.sent(pending, began=bool(began))
            self._cursor = cursor
            self._rows = collections.deque(rows)

    def close(self) -> None:
        """Drop rows not fetched (the sqlite3 cursor is already closed)."""
        self._rows.clear()


class OneTripStreamCursor(AsyncAdapt_aiosqlite_ss_cursor):
    """SQLAlchemy's aiosqlite server-side cursor (``stream``), sending the pending BEGIN first."""

    __slots__ = ()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        """Send the unit's PRAGMA and BEGIN (a trip of their own), then execute as SQLAlchemy does."""
        driver: Any = self._connection
        connection = cast("OneTripConnection", self._adapt_connection)
        connection.committed = False
        async with connection._execute_mutex:  # taken as in _trip: a cancelled wait sends nothing
            pending = connection.take_pending()
            began = False
            try:
                if pending:
                    await driver._execute(_run_all, driver._conn, pending)
                began = True
            finally:
                connection.sent(pending, began=began)
        return await super()._execute_async(operation, parameters)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection: one trip per statement, BEGIN sent with the first one."""

    __slots__ = ("_wanted_query_only", "committed", "pending", "query_only")

    _cursor_cls = OneTripCursor
    _ss_cursor_cls = OneTripStreamCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        #: True from a commit until the next BEGIN or statement: sqlite3's commit ends any
        #: transaction, so the pool's rollback on return has nothing to do.
        self.committed = False
        #: PRAGMA query_only and BEGIN of a unit of work, sent with its first statement.
        self.pending: tuple[str, ...] = ()
        #: The connection's PRAGMA query_only; None when unknown (a BEGIN trip failed).
        self.query_only: bool | None = False
        self._wanted_query_only = False

    def begin(self, *, read_only: bool) -> None:
        """Queue the BEGIN of a unit of work (and the PRAGMA query_only switch) for its first statement.

        A read-only unit: ``PRAGMA query_only=ON`` (the database refuses every write, raw SQL
        included) and ``BEGIN``. A write unit: ``BEGIN IMMEDIATE``, holding the write lock
        from the start (a deferred transaction that reads and then writes fails with
        SQLITE_BUSY instead of waiting).
        """
        statements: list[str] = []
        if self.query_only is not read_only:
            statements.append("PRAGMA query_only=ON" if read_only else "PRAGMA query_only=OFF")
        statements.append("BEGIN" if read_only else "BEGIN IMMEDIATE")
        self.pending = tuple(statements)
        self._wanted_query_only = read_only
        self.committed = False

    def take_pending(self) -> tuple[str, ...]:
        """Return the statements to send before the next one, now no longer pending."""
        pending, self.pending = self.pending, ()
        if pending:
            self.query_only = None  # unknown until they have run
        return pending

    def sent(self, pending: tuple[str, ...], *, began: bool) -> None:
        """Record the outcome of a trip that carried ``pending``."""
        if pending and began:
            self.query_only = self._wanted_query_only

    def commit(self) -> None:
        """Commit; the connection then holds no transaction (none was begun: no trip)."""
        if self.pending:
            self.pending = ()
        else:
            super().commit()
        self.committed = True

    def rollback(self) -> None:
        """Roll back, unless no transaction was begun since the last commit (no trip then)."""
        if self.pending:
            self.pending = ()
        elif not self.committed:
            super().rollback()


class _OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI module, connecting with ``OneTripConnection``."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        """Return a new connection (aiosqlite's thread started by SQLAlchemy's own connect)."""
        stock = super().connect(*arg, **kw)
        return OneTripConnection(self, stock._connection)


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """Return the DBAPI module to pass as ``create_async_engine(module=...)`` for aiosqlite."""
    return _OneTripDBAPI(aiosqlite, sqlite3)
