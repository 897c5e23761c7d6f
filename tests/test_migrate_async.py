"""``upgrade_async``/``downgrade_async``/``current_async``: Alembic on the caller's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from datalayer import Database, migrate
from datalayer.errors import DatabaseUnavailableError, InvalidDataError
from datalayer.models import UserModel
from datalayer.repositories import Repository
from datalayer.testing import free_port


async def tables(url: str) -> set[str]:
    """Return the names of the tables in the database."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_current_downgrade_from_async_code(empty_url: str) -> None:
    assert await migrate.current_async(empty_url) is None
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    # Alembic's database calls yield to this loop (run_sync's greenlet bridge): other tasks run.
    other_task = asyncio.create_task(ticker())
    try:
        await migrate.upgrade_async(empty_url)
    finally:
        other_task.cancel()
    assert ticks > 0
    assert await migrate.current_async(empty_url) == migrate.head() == "0002"
    assert await asyncio.to_thread(migrate.differences, empty_url) == []
    async with Database(empty_url) as db, db.session() as s:
        await Repository(UserModel, s).create(email="ada@example.com", username="ada")

    await migrate.downgrade_async(empty_url)
    assert await migrate.current_async(empty_url) is None
    assert await tables(empty_url) <= {migrate.VERSION_TABLE}

    await migrate.upgrade_async(empty_url, "0001")
    assert await asyncio.to_thread(migrate.current, empty_url) == "0001"


async def test_unknown_revision_is_invalid_data_and_changes_nothing(empty_url: str) -> None:
    with pytest.raises(InvalidDataError) as caught:
        await migrate.upgrade_async(empty_url, "no-such-revision")
    assert caught.value.field == "revision"
    assert "\n" not in str(caught.value)
    assert await tables(empty_url) <= {migrate.VERSION_TABLE}
    await migrate.upgrade_async(empty_url)
    with pytest.raises(InvalidDataError):
        await migrate.downgrade_async(empty_url, "no-such-revision")
    assert await migrate.current_async(empty_url) == migrate.head()


async def test_unreachable_database_is_unavailable_in_one_line(backend: str, tmp_path: Path) -> None:
    calls: list[Callable[[str], Awaitable[object]]] = [migrate.upgrade_async, migrate.downgrade_async]
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'x.db'}"
    else:
        url = f"postgresql+asyncpg://postgres:secret-pw@127.0.0.1:{free_port()}/nothing"
        calls.append(migrate.current_async)  # a missing SQLite file's revision is None (below)
    for call in calls:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await call(url)
        assert "\n" not in str(caught.value)
        assert "secret-pw" not in str(caught.value)
    assert not (tmp_path / "missing-dir").exists()


async def test_current_async_of_a_missing_sqlite_file_is_none_without_creating_it(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    assert await migrate.current_async(f"sqlite+aiosqlite:///{path}") is None
    assert not path.exists()


async def test_the_sync_functions_inside_a_loop_point_to_the_async_ones(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="upgrade_async"):
        migrate.upgrade(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
