"""One trip to aiosqlite's thread per statement (``datalayer._sqlite_driver``).

The private API it relies on (SQLAlchemy's aiosqlite adapter classes, aiosqlite's
``Connection._execute`` and ``_conn``) is checked first, so that an upgrade that changes it
fails here before anything else does. Then what SQLAlchemy reads from a cursor (rows,
description, rowcount, lastrowid, errors) is checked on real SQLite files.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_cursor
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_cursor
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from datalayer import Database
from datalayer._sqlite_driver import OneTripConnection, OneTripCursor
from datalayer.errors import ConstraintViolationError, DataLayerError, ReadOnlyError
from datalayer.models import UserModel
from datalayer.repositories import UserRepository
from tests.helpers import make_user


def test_the_private_api_it_builds_on_is_still_there() -> None:
    # SQLAlchemy: the adapter picks plain cursors from _cursor_cls and runs them through
    # _execute_async/_executemany_async under the connection's _execute_mutex.
    assert AsyncAdapt_aiosqlite_connection._cursor_cls is AsyncAdapt_aiosqlite_cursor
    assert issubclass(AsyncAdapt_aiosqlite_cursor, AsyncAdapt_dbapi_cursor)
    for name in ("_execute_async", "_executemany_async", "_async_soft_close", "close"):
        assert name in AsyncAdapt_dbapi_cursor.__dict__, name
    slots = {name for klass in AsyncAdapt_dbapi_cursor.__mro__ for name in getattr(klass, "__slots__", ())}
    assert {"_adapt_connection", "_connection", "_cursor", "_rows", "_soft_closed_memoized"} <= slots
    assert "_execute_mutex" in {
        name for klass in AsyncAdapt_aiosqlite_connection.__mro__ for name in getattr(klass, "__slots__", ())
    }
    # aiosqlite: _execute(fn, *args) runs fn(*args) on the connection's thread; _conn is sqlite3's.
    assert list(inspect.signature(aiosqlite.Connection._execute).parameters) == [
        "self",
        "fn",
        "args",
        "kwargs",
    ]
    assert isinstance(inspect.getattr_static(aiosqlite.Connection, "_conn"), property)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'trip.db'}")
    await database.create_all()
    yield database
    await database.dispose()


def count_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every function sent to an aiosqlite thread from now on (with its SQL, if given)."""
    sent: list[str] = []
    original: Callable[..., Awaitable[Any]] = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(fn, "__name__", repr(fn))
        sent.append(f"{name} {args[0]}" if args and isinstance(args[0], str) else name)
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return sent


async def refuses_then_writes(database: Database, username: str, expected: list[str]) -> None:
    """Check that a read-only unit refuses a raw DELETE, then a write unit adds ``username``."""
    with pytest.raises(ReadOnlyError):
        async with database.session(read_only=True) as s:
            await (await s.connection()).execute(sa.text("DELETE FROM users"))
    async with database.session() as s:
        await make_user(s, username=username)
    async with database.session(read_only=True) as s:
        assert sorted(u.username for u in await UserRepository(s).get_all()) == expected


async def test_database_connections_use_one_trip_cursors(database: Database) -> None:
    async with database.engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).dbapi_connection
        assert isinstance(driver, OneTripConnection)
        assert isinstance(driver.cursor(), OneTripCursor)


async def test_a_select_is_one_trip_and_returns_its_rows_and_columns(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with database.session() as s:
        await make_user(s, username="ada")
        await make_user(s, username="bob")
    async with database.engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))  # the BEGIN of this connection, out of the count
        sent = count_trips(monkeypatch)
        result = await conn.execute(
            sa.select(col(UserModel.username), col(UserModel.email)).order_by(col(UserModel.username))
        )
        assert sent == ["_run"]
        assert list(result.keys()) == ["username", "email"]
        assert [row.username for row in result] == ["ada", "bob"]


async def test_rowcount_lastrowid_and_returning_after_the_cursor_closed(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        inserted = await conn.execute(sa.text("INSERT INTO t (v) VALUES ('a')"))
        assert inserted.lastrowid == 1
        many = await conn.execute(
            sa.text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}, {"v": "d"}]
        )
        assert many.rowcount == 3
        updated = await conn.execute(sa.text("UPDATE t SET v = 'z' WHERE id > 1"))
        assert updated.rowcount == 3
        returned = await conn.execute(sa.text("DELETE FROM t WHERE id <= 2 RETURNING id, v"))
        assert sorted(returned.all()) == [(1, "a"), (2, "z")]
        left = await conn.execute(sa.text("SELECT count(*) FROM t"))
        assert left.scalar_one() == 2


async def test_errors_are_sqlalchemys_with_sqlite3s_chained_and_nothing_written(database: Database) -> None:
    async with database.session() as s:
        user = await make_user(s, username="ada")
    with pytest.raises(ConstraintViolationError) as caught:
        async with database.session() as s:
            await make_user(s, username="eve")
            await (await s.connection()).execute(
                sa.text("INSERT INTO users (id) VALUES (:id)"), {"id": user.id.hex}
            )
    assert isinstance(caught.value.__cause__, DBAPIError)
    assert isinstance(caught.value.__cause__.orig, sqlite3.IntegrityError)
    async with database.session(read_only=True) as s:
        assert [u.username for u in await UserRepository(s).get_all()] == ["ada"]
    async with database.engine.connect() as conn:
        with pytest.raises(DBAPIError) as syntax:
            await conn.execute(sa.text("SELEKT 1"))
        assert isinstance(syntax.value.orig, sqlite3.OperationalError)
        assert (await conn.execute(sa.text("SELECT 2"))).scalar_one() == 2  # the connection still works


async def test_a_cancelled_statement_leaves_no_lock_and_no_write(database: Database) -> None:
    async with database.session() as s:
        await make_user(s, username="ada")
    started = asyncio.Event()

    async def slow_write() -> None:
        async with database.session() as s:
            await make_user(s, username="eve")
            started.set()
            # A recursive CTE long enough to be cancelled while it runs on aiosqlite's thread.
            await (await s.connection()).execute(
                sa.text(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000)"
                    " SELECT count(*) FROM n"
                )
            )

    task = asyncio.create_task(slow_write())
    await started.wait()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with database.session() as s:  # takes the write lock: nothing was left holding it
        names = sorted(u.username for u in await UserRepository(s).get_all())
        await make_user(s, username="zoe")
    assert names == ["ada"]


async def test_a_users_own_module_is_kept(tmp_path: Path) -> None:
    from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite

    module = SQLiteDialect_aiosqlite.import_dbapi()
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'own.db'}", module=module)
    try:
        await database.create_all()
        async with database.engine.connect() as conn:
            driver: Any = (await conn.get_raw_connection()).dbapi_connection
            assert type(driver) is AsyncAdapt_aiosqlite_connection
            assert (await conn.execute(sa.text("SELECT 3"))).scalar_one() == 3
        # Units of work keep their BEGIN and PRAGMA query_only, sent at BEGIN time.
        async with database.session() as s:
            await make_user(s, username="ada")
        await refuses_then_writes(database, "bob", ["ada", "bob"])
    finally:
        await database.dispose()


async def test_a_unit_of_work_is_two_trips_and_the_pool_skips_its_rollback_after_a_commit(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = count_trips(monkeypatch)
    for read_only in (False, True, False, True):  # PRAGMA query_only switches each time
        async with database.session(read_only=read_only) as s:
            await UserRepository(s).count()
    # [PRAGMA and] BEGIN with the statement, COMMIT; no ROLLBACK on return to the pool.
    assert sent == ["_run", "commit"] * 4


async def test_a_read_only_unit_refuses_writes_after_a_write_unit_failed_to_begin(
    tmp_path: Path,
) -> None:
    path = tmp_path / "busy.db"
    database = Database(f"sqlite+aiosqlite:///{path}", sqlite_busy_timeout=0.05, pool_size=1, max_overflow=0)
    await database.create_all()
    async with database.session(read_only=True) as s:  # the one pooled connection: query_only=ON
        await UserRepository(s).count()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    try:
        with pytest.raises(DataLayerError):  # PRAGMA query_only=OFF ran, BEGIN IMMEDIATE timed out
            async with database.session() as s:
                await make_user(s)
    finally:
        other.execute("ROLLBACK")
        other.close()
    try:
        await refuses_then_writes(database, "ada", ["ada"])
    finally:
        await database.dispose()


async def test_a_unit_that_fails_is_rolled_back_on_return_and_the_lock_released(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = count_trips(monkeypatch)
    with pytest.raises(RuntimeError):
        async with database.session() as s:
            await make_user(s, username="eve")
            raise RuntimeError("the caller's own failure, after the INSERT")
    assert sent[-1] == "rollback"
    async with database.session() as s:  # BEGIN IMMEDIATE would wait for a lock left behind
        assert await UserRepository(s).count() == 0
        await make_user(s, username="ada")
    async with database.session(read_only=True) as s:
        assert [u.username for u in await UserRepository(s).get_all()] == ["ada"]


async def test_a_streamed_first_statement_sends_the_begin_first(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with database.session() as s:
        await make_user(s, username="ada")
        await make_user(s, username="bob")
    sent = count_trips(monkeypatch)
    with pytest.raises(ReadOnlyError):
        async with database.session(read_only=True) as s:
            conn = await s.connection()
            result = await conn.stream(sa.select(col(UserModel.username)).order_by(col(UserModel.username)))
            assert [row.username async for row in result] == ["ada", "bob"]
            # SQLAlchemy's server-side cursor is made, then PRAGMA query_only=ON and BEGIN go
            # in a trip of their own before it executes.
            assert sent[:2] == ["cursor", "_run_all"]
            assert sent[2].startswith("execute SELECT")
            await conn.execute(sa.text("DELETE FROM users"))
    async with database.session(read_only=True) as s:
        assert await UserRepository(s).count() == 2


async def test_a_transaction_without_statements_makes_no_trip(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with database.engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
        await conn.commit()
        sent = count_trips(monkeypatch)
        await conn.begin()
        await conn.commit()
        await conn.begin()
        await conn.rollback()
        assert sent == []  # BEGIN was never sent, so there is nothing to commit or roll back
        assert (await conn.execute(sa.text("SELECT 4"))).scalar_one() == 4
    assert sent == ["_run", "rollback"]  # the last BEGIN went with SELECT 4; closing rolls it back
