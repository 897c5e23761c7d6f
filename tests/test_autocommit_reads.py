"""Read-only units on PostgreSQL run without BEGIN/COMMIT, on their own read-only pool.

Each statement of such a unit is its own transaction (``now()`` moves between statements);
write units and ``autocommit_reads=False`` keep one transaction. The server still refuses
writes in them (raw SQL included), and the second pool is listed, instrumented and disposed
with the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from datalayer import Database
from datalayer.errors import ReadOnlyError
from datalayer.models import UserModel
from datalayer.repositories import UserRepository
from tests.helpers import make_user


async def transaction_starts(db: Database, *, read_only: bool) -> tuple[datetime, datetime]:
    """Return ``now()`` (the start of the current transaction) seen by two statements of one unit."""
    async with db.session(read_only=read_only) as s:
        first = (await s.exec(select(sa.func.now()))).one()
        await asyncio.sleep(0.01)
        second = (await s.exec(select(sa.func.now()))).one()
    return first, second


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Database]:
    """Return a Database straight on the test server, defaults kept (even in CI's pgbouncer pass)."""
    async with Database(postgres_url, pgbouncer=False) as database:
        yield database


async def test_postgres_read_only_units_send_each_statement_in_its_own_transaction(pg: Database) -> None:
    first, second = await transaction_starts(pg, read_only=True)
    assert second > first
    assert pg.read_engine is not pg.engine
    assert [role for role, _ in pg.engines()] == ["primary", "primary"]
    # Write units always run in one transaction.
    first, second = await transaction_starts(pg, read_only=False)
    assert second == first


async def test_postgres_autocommit_reads_false_keeps_one_read_only_transaction(postgres_url: str) -> None:
    async with Database(postgres_url, pgbouncer=False, autocommit_reads=False) as database:
        first, second = await transaction_starts(database, read_only=True)
        assert second == first
        assert database.read_engine is database.engine
        assert [role for role, _ in database.engines()] == ["primary"]


def test_postgres_autocommit_reads_are_off_through_pgbouncer_or_with_an_isolation_level(
    postgres_url: str,
) -> None:
    for database in (
        Database(postgres_url, pgbouncer=True),
        Database(postgres_url, pgbouncer=False, isolation_level="REPEATABLE READ"),
    ):
        assert database.read_engine is database.engine
        assert [role for role, _ in database.engines()] == ["primary"]


async def test_postgres_stream_in_a_read_only_unit_then_autocommit_again(pg: Database) -> None:
    await pg.create_all()
    async with pg.session() as s:
        ids = [(await make_user(s, username=f"s{n}", email=f"s{n}@example.com")).id for n in range(7)]
    async with pg.session(read_only=True) as s:
        # A server-side cursor needs a transaction: the unit opens one for it.
        streamed = [u.id async for u in UserRepository(s).stream(batch_size=3)]
        first = (await s.exec(select(sa.func.now()))).one()
        assert (await s.exec(select(sa.func.now()))).one() == first
    assert set(ids) <= set(streamed)
    assert len(streamed) == len(set(streamed))
    # Checked in, the connection is back in autocommit for the next read-only unit.
    first, second = await transaction_starts(pg, read_only=True)
    assert second > first


def test_sqlite_read_only_units_share_the_write_pool(tmp_path: Path) -> None:
    # One transaction per unit: SQLite's snapshot then covers every statement of the unit.
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    assert database.read_engine is database.engine
    assert [role for role, _ in database.engines()] == ["primary"]


async def test_the_read_pool_refuses_writes_and_reads_what_writers_committed(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s, username="reader")
    async with db.session(read_only=True) as s:
        found = await UserRepository(s).get_by_id(user.id)
        assert found is not None
        assert found.username == "reader"
    for statement in ("UPDATE users SET username = 'changed'", "CREATE TABLE sneaky (id int)"):
        with pytest.raises(ReadOnlyError):
            async with db.session(read_only=True) as s:
                await (await s.connection()).execute(sa.text(statement))
    async with db.session(read_only=True) as s:
        assert (await s.exec(select(UserModel.username))).all() == ["reader"]


async def test_postgres_dispose_closes_the_read_pool(pg: Database) -> None:
    async with pg.session(read_only=True) as s:
        await s.exec(select(sa.literal(1)))
    pool = pg.read_engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    assert pool.checkedin() == 1
    await pg.dispose()
    assert pool.checkedin() == 0
