"""Database: URL resolution, unit of work, FastAPI dependency, SQLite pragmas, failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from datalayer import Database
from datalayer.database import (
    DEFAULT_DATABASE_URL,
    DEFAULT_SQLITE_CACHE_MIB,
    ENV_VAR,
    resolve_url,
)
from datalayer.errors import DatabaseUnavailableError, InvalidDataError
from datalayer.models import UserModel
from datalayer.repositories import Repository
from datalayer.testing import free_port
from tests.helpers import make_user, row_count


def test_url_from_argument_env_or_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert str(resolve_url()) == DEFAULT_DATABASE_URL
    monkeypatch.setenv(ENV_VAR, "postgresql://u:secret@db.internal/app")
    assert resolve_url().drivername == "postgresql+asyncpg"
    assert resolve_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert resolve_url("sqlite+aiosqlite:///y.db").database == "y.db"


@pytest.mark.parametrize("bad", ["not a url", "mysql://u@h/db", "://"])
def test_bad_url_is_invalid_data(bad: str) -> None:
    with pytest.raises(InvalidDataError) as caught:
        resolve_url(bad)
    assert caught.value.field == "url"


async def test_repr_and_errors_hide_the_password() -> None:
    db = Database("postgresql://admin:hunter2@127.0.0.1:1/app")
    try:
        assert "hunter2" not in repr(db)
        assert "***" in repr(db)
    finally:
        await db.dispose()
    with pytest.raises(InvalidDataError) as caught:
        resolve_url("mysql://admin:hunter2@h/db")
    assert "hunter2" not in str(caught.value)


async def test_default_database_is_the_embedded_sqlite_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    async with Database() as db:
        assert db.backend == "sqlite"
        await db.create_all()
        async with db.session() as s:
            await make_user(s)
    assert (tmp_path / "datalayer.db").exists()


async def test_session_commits_on_success(db: Database) -> None:
    async with db.session() as s:
        await make_user(s)
    async with db.session() as s:
        assert await row_count(s, UserModel) == 1


async def test_session_rolls_back_on_any_exception_and_closes(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.session() as s:
            await make_user(s)
            raise Boom
    assert not s.in_transaction()
    async with db.session() as s:
        assert await row_count(s, UserModel) == 0


async def test_session_dependency_commits_or_rolls_back(db: Database) -> None:
    dependency = db.session_dependency()
    s = await anext(dependency)
    await make_user(s)
    with pytest.raises(StopAsyncIteration):
        await anext(dependency)

    failing = db.session_dependency()
    s = await anext(failing)
    await make_user(s)
    with pytest.raises(RuntimeError):
        await failing.athrow(RuntimeError("handler failed"))
    async with db.session() as check:
        assert await row_count(check, UserModel) == 1


async def test_create_all_is_idempotent(db: Database) -> None:
    await db.create_all()
    async with db.session() as s:
        assert await row_count(s, UserModel) == 0


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", sqlite_busy_timeout=7)
    async with db, db.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 7000
        assert (await conn.exec_driver_sql("PRAGMA cache_size")).scalar() == -DEFAULT_SQLITE_CACHE_MIB * 1024
        assert (await conn.exec_driver_sql("PRAGMA mmap_size")).scalar() == 0  # off unless asked


async def test_sqlite_cache_settings_are_overridable(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    async with Database(url, sqlite_cache_mib=8, sqlite_mmap_mib=16) as db, db.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA cache_size")).scalar() == -8 * 1024
        assert (await conn.exec_driver_sql("PRAGMA mmap_size")).scalar() == 16 * 2**20
    async with Database(url, sqlite_cache_mib=None, sqlite_mmap_mib=None) as db, db.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA cache_size")).scalar() == -2000  # SQLite's own default


@pytest.mark.parametrize("field", ["sqlite_cache_mib", "sqlite_mmap_mib"])
@pytest.mark.parametrize("bad", [-1, 1.5, True, "64", 2**21])
def test_bad_sqlite_cache_settings_name_the_field(field: str, bad: object) -> None:
    with pytest.raises(InvalidDataError) as caught:
        Database("sqlite+aiosqlite://", **{field: bad})  # type: ignore[arg-type]  # refused input
    assert caught.value.field == field
    assert caught.value.value == bad


async def test_sqlite_concurrent_writers_wait_for_the_lock(tmp_path: Path) -> None:
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}") as db:
        await db.create_all()

        async def writer(n: int) -> None:
            async with db.session() as s:
                # Read, then write in the same unit: the classic lock-upgrade failure.
                await s.exec(select(sa.func.count()).select_from(UserModel))
                await asyncio.sleep(0)
                await make_user(s, email=f"w{n}@example.com", username=f"w{n}")

        await asyncio.gather(*(writer(n) for n in range(10)))
        async with db.session(read_only=True) as s:
            assert await row_count(s, UserModel) == 10


async def test_a_sqlite_connection_closed_behind_the_pool_fails_one_unit_only(tmp_path: Path) -> None:
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}") as db:
        async with db.session() as s:
            await s.exec(select(sa.literal(1)))
        async with db.engine.connect() as conn:  # the pooled connection, closed under the pool
            raw = await conn.get_raw_connection()
            await raw.driver_connection.close()  # type: ignore[union-attr]  # checked out, so open
        with pytest.raises(DatabaseUnavailableError):
            async with db.session() as s:
                await s.exec(select(sa.literal(1)))
        async with db.session() as s:  # the closed connection was dropped, a new one made
            assert (await s.exec(select(sa.literal(1)))).one() == 1


async def test_unreachable_postgres_is_unavailable_within_timeout() -> None:
    port = free_port()  # nothing listens there
    async with Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x", connect_timeout=2) as db:
        started = asyncio.get_running_loop().time()
        with pytest.raises(DatabaseUnavailableError) as caught:
            async with db.session() as s:
                await Repository(UserModel, s).count()
        assert caught.value.__cause__ is not None
        assert asyncio.get_running_loop().time() - started < 10


async def test_missing_sqlite_directory_is_unavailable(tmp_path: Path) -> None:
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}") as db:
        with pytest.raises(DatabaseUnavailableError):
            async with db.session() as s:
                await Repository(UserModel, s).count()
