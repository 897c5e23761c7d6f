"""Misuse of the unit of work and of Database, and backend parity of limits and error classes.

Each case gets correct behaviour or a clear ``datalayer.errors`` exception, never a raw driver
error, a hang or a silently dropped write.
"""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from datalayer import Database
from datalayer.errors import (
    DatabaseUnavailableError,
    DataLayerError,
    InvalidDataError,
    ReadOnlyError,
    UsageError,
)
from datalayer.models import MAX_BIGINT, SessionModel, UserModel
from datalayer.repositories import Repository, SessionRepository
from datalayer.types import MONEY_MAX
from tests.helpers import make_session, make_user


def checked_out(db: Database) -> int:
    """Return how many connections the Database's pool has handed out."""
    pool = db.engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    return pool.checkedout()


async def usernames(db: Database) -> list[str]:
    async with db.session(read_only=True) as s:
        return list((await s.exec(select(UserModel.username).order_by(col(UserModel.username)))).all())


# -- item 2: a session used after its unit ended -------------------------------------------


async def test_session_used_after_its_unit_raises_and_holds_nothing(db: Database) -> None:
    async with db.session() as s:
        await make_user(s, username="inside", email="inside@example.com")
    users = Repository(UserModel, s)
    with pytest.raises(UsageError, match="this unit of work has ended"):
        await users.create(username="late", email="late@example.com")
    with pytest.raises(UsageError, match="this unit of work has ended"):
        await users.count()
    with pytest.raises(UsageError, match="this unit of work has ended"):
        s.add(UserModel(username="late2", email="late2@example.com"))
    with pytest.raises(UsageError, match="this unit of work has ended"):
        async for _ in users.stream():
            pass
    assert checked_out(db) == 0
    assert await usernames(db) == ["inside"]


async def test_background_task_after_the_unit_gets_the_error(db: Database) -> None:
    async with db.session() as s:
        task = asyncio.get_running_loop().create_task(
            asyncio.sleep(0.01, result=None)
        )  # stands in for work that outlives the request
    await task
    with pytest.raises(UsageError):
        await Repository(UserModel, s).create(username="bg", email="bg@example.com")
    assert checked_out(db) == 0
    assert await usernames(db) == []


# -- item 3: entities of a rolled-back unit --------------------------------------------------


async def test_entities_of_a_rolled_back_unit_stay_readable(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.session() as s:
            user = await make_user(s, username="gone", email="gone@example.com")
            raise RuntimeError("abort the unit")
    # The values it had stay readable; the row is not in the database.
    assert user.username == "gone"
    assert user.id is not None
    assert await usernames(db) == []


# -- item 4: one Database across event loops / threads ---------------------------------------


async def test_database_from_another_thread_raises_usage_error(db: Database) -> None:
    await make_user_in_unit(db, "first")
    outcome: list[BaseException | None] = []

    def other_thread() -> None:
        try:
            asyncio.run(make_user_in_unit(db, "from-thread"))
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], UsageError)
    assert "another event loop" in str(outcome[0])
    assert await usernames(db) == ["first"]


def test_consecutive_asyncio_run_calls_work(empty_url: str) -> None:
    db = Database(empty_url)

    async def setup() -> None:
        await db.create_all()
        await make_user_in_unit(db, "run1")
        if db.backend == "sqlite":
            # A forgotten aiosqlite connection's thread would report to the closed loop (noise);
            # the PostgreSQL case leaves its pooled connections behind on purpose.
            await db.dispose()

    async def second() -> list[str]:
        await make_user_in_unit(db, "run2")
        names = await usernames(db)
        await db.dispose()
        return names

    asyncio.run(setup())
    assert asyncio.run(second()) == ["run1", "run2"]


async def make_user_in_unit(db: Database, name: str) -> None:
    async with db.session() as s:
        await make_user(s, username=name, email=f"{name}@example.com")


# -- item 7: read-only units refuse raw SQL writes -------------------------------------------


async def test_read_only_unit_refuses_raw_sql_writes(db: Database) -> None:
    await make_user_in_unit(db, "ro")
    for statement in ("UPDATE users SET username = 'changed'", "DELETE FROM users"):
        with pytest.raises(ReadOnlyError):
            async with db.session(read_only=True) as s:
                conn = await s.connection()
                await conn.execute(sa.text(statement))
    with pytest.raises(ReadOnlyError):
        async with db.session(read_only=True) as s:
            conn = await s.connection()
            await conn.exec_driver_sql("UPDATE users SET username = 'driver'")
    assert await usernames(db) == ["ro"]
    # The next write unit on the same connections writes normally.
    await make_user_in_unit(db, "rw")
    assert await usernames(db) == ["ro", "rw"]


# -- item 8: in-memory SQLite ----------------------------------------------------------------


async def test_in_memory_sqlite_serializes_units() -> None:
    async with Database("sqlite+aiosqlite://") as db:
        await db.create_all()

        async def unit(i: int) -> None:
            async with db.session() as s:
                await make_user(s, username=f"m{i}", email=f"m{i}@example.com")
                await asyncio.sleep(0)
                if i % 3 == 0:
                    raise ValueError("this unit fails")

        results = await asyncio.gather(*(unit(i) for i in range(12)), return_exceptions=True)
        failed = [i for i, r in enumerate(results) if r is not None]
        assert failed == [0, 3, 6, 9]
        assert all(isinstance(results[i], ValueError) for i in failed)
        assert await usernames(db) == sorted(f"m{i}" for i in range(12) if i % 3)
        with pytest.raises(UsageError, match="cannot nest"):
            async with db.session(), db.session():
                pass


# -- item 10: classification by code, the same on both backends ------------------------------


async def test_programming_error_is_not_unavailable(db: Database) -> None:
    with pytest.raises(DataLayerError) as caught:
        async with db.session(read_only=True) as s:
            await Repository(UserModel, s).get_all(order_by=[col(SessionModel.name)])
    assert type(caught.value) is DataLayerError
    assert caught.value.__cause__ is not None


@pytest.mark.postgres_only
async def test_missing_database_and_unknown_role_are_unavailable(postgres_url: str) -> None:
    url = make_url(postgres_url)
    for bad in (url.set(database="no_such_database_here"), url.set(username="no_such_role")):
        async with Database(bad) as db:
            with pytest.raises(DatabaseUnavailableError) as caught:
                async with db.session() as s:
                    await Repository(UserModel, s).count()
            assert caught.value.__cause__ is not None


async def test_sqlite_file_in_missing_directory_is_unavailable(tmp_path: Path) -> None:
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}") as db:
        with pytest.raises(DatabaseUnavailableError):
            async with db.session() as s:
                await Repository(UserModel, s).count()


# -- item 9: money and counter limits, the same on both backends -----------------------------


async def test_money_limit_is_the_same_on_both_backends(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s)
        sessions = SessionRepository(s)
        at_limit = await sessions.create(user_id=user.id, total_cost_usd=MONEY_MAX)
        with pytest.raises(InvalidDataError) as caught:
            await sessions.create(user_id=user.id, total_cost_usd=Decimal("99999999999.999999999"))
        assert caught.value.field == "total_cost_usd"
    async with db.session(read_only=True) as s:
        stored = await SessionRepository(s).get(at_limit.id)
    assert stored.total_cost_usd == MONEY_MAX


async def test_add_usage_past_a_limit_names_the_field_and_changes_nothing(db: Database) -> None:
    async with db.session() as s:
        chat = await make_session(s, total_messages=MAX_BIGINT - 1, total_cost_usd=MONEY_MAX - 1)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("total_messages", {"total_messages": 2}),
        ("total_cost_usd", {"total_cost_usd": Decimal(2)}),
    ]
    for field, deltas in cases:
        with pytest.raises(InvalidDataError) as caught:
            async with db.session() as s:
                await SessionRepository(s).add_usage(chat.id, **deltas)
        assert caught.value.field == field
    async with db.session() as s:
        assert await SessionRepository(s).add_usage(chat.id, total_messages=1, total_cost_usd=1)
    async with db.session(read_only=True) as s:
        stored = await SessionRepository(s).get(chat.id)
    assert stored.total_messages == MAX_BIGINT
    assert type(stored.total_messages) is int
    assert stored.total_cost_usd == MONEY_MAX
