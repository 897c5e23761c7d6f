"""aiosqlite with one trip to its thread per statement, where SQLAlchemy's adapter makes four.

aiosqlite runs every sqlite3 call on one worker thread per connection, and each call is a
round trip to it (~0.3 ms on this machine image: a thread wake-up and a loop wake-up).
SQLAlchemy's adapter cursor makes four per statement: create the cursor, execute, fetch
all rows, close. ``OneTripCursor`` does the four in one function on that thread, so a
statement costs one trip, and a statement cancelled midway still has its cursor closed
(nothing left unfinalized for the garbage collector).

``Database`` passes ``dbapi()`` as ``create_async_engine(module=...)`` (SQLAlchemy's public
way to supply a DBAPI module) for ``sqlite+aiosqlite`` URLs; streamed results keep
SQLAlchemy's server-side cursor unchanged.

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
from collections.abc import Awaitable, Sequence
from typing import Any, cast

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

__all__ = ["OneTripConnection", "OneTripCursor", "dbapi"]


def _run(
    raw: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[sqlite3.Cursor, list[Any]]:
    """Return the closed sqlite3 cursor (for description, rowcount, lastrowid) and its rows.

    Runs on aiosqlite's thread: create, execute, fetch and close in one call.
    """
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
        connection.committed = False
        async with connection._execute_mutex:
            cursor, rows = await driver._execute(_run, driver._conn, operation, parameters, many)
            self._cursor = cursor
            self._rows = collections.deque(rows)

    def close(self) -> None:
        """Drop rows not fetched (the sqlite3 cursor is already closed)."""
        self._rows.clear()


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection whose plain cursors are ``OneTripCursor``."""

    __slots__ = ("committed",)

    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        #: True from a commit until the next statement: sqlite3's commit ends any
        #: transaction, so the pool's rollback on return has nothing to do.
        self.committed = False

    def run_statements(self, statements: Sequence[str]) -> None:
        """Run parameterless statements in order in one trip (a unit of work's PRAGMA and BEGIN).

        Errors are aiosqlite's and sqlite3's own, not adapted: ``ValueError`` when the
        connection is closed, ``sqlite3.Error`` from a statement.
        """
        self.committed = False

        def send(driver: Any) -> Awaitable[None]:  # an aiosqlite.Connection; _execute is untyped
            return cast("Awaitable[None]", driver._execute(_run_all, driver._conn, statements))

        self.run_async(send)

    def commit(self) -> None:
        """Commit; the connection then holds no transaction."""
        super().commit()
        self.committed = True

    def rollback(self) -> None:
        """Roll back, unless nothing ran since the last commit (saves a trip per unit of work)."""
        if not self.committed:
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
