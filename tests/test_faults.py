"""Connection faults on a real PostgreSQL server of this module's own.

The server's backends are killed (``pg_terminate_backend``), the server is stopped and
started again on the same port, and an address that never answers stands in for an
unreachable host. After each fault the next unit of work either succeeds or raises
``DatabaseUnavailableError``, the one after succeeds, committed rows are all there and
an interrupted unit of work left nothing behind. The number of faults injected is
printed in the terminal summary.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import select

from datalayer import Database
from datalayer.errors import DatabaseUnavailableError
from datalayer.models import UserModel
from datalayer.repositories import Repository
from datalayer.testing import COUNTS, PostgresNotAvailable, TemporaryPostgres
from tests.helpers import make_user, missing_prerequisite

SECTION = "faults injected (tests/test_faults.py)"


@pytest.fixture(scope="module")
def server() -> Iterator[TemporaryPostgres]:
    """Start a PostgreSQL server that only this module stops and restarts."""
    try:
        pg = TemporaryPostgres(database="faults")
    except PostgresNotAvailable as exc:
        missing_prerequisite(exc)
    pg.start()
    try:
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture
async def db(server: TemporaryPostgres) -> AsyncIterator[Database]:
    """Return a Database on the module's server (running), with an empty users table."""
    if not server.running:
        server.start()
    database = Database(server.url, connect_timeout=5, pool_size=5)
    await database.drop_all()
    await database.create_all()
    try:
        yield database
    finally:
        await database.dispose()


async def terminate_backends(server: TemporaryPostgres) -> int:
    """Kill every other backend of the server's database; return how many were killed."""
    admin = Database(server.url, poolclass=sa.pool.NullPool)
    try:
        async with admin.engine.connect() as conn:
            result = await conn.execute(
                sa.text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND datname = current_database()"
                )
            )
            killed: int = result.scalar_one()
    finally:
        await admin.dispose()
    COUNTS.add(SECTION, "backends_terminated", killed)
    return killed


async def warm_pool(db: Database, connections: int) -> None:
    """Check out ``connections`` pooled connections at once so that all of them exist."""

    async def hold() -> None:
        async with db.session(read_only=True) as s:
            await Repository(UserModel, s).count()
            await asyncio.sleep(0.05)

    await asyncio.gather(*(hold() for _ in range(connections)))


async def count_users(db: Database) -> int | None:
    """Return the number of users, or None when the unit failed with DatabaseUnavailableError."""
    try:
        async with db.session(read_only=True) as s:
            return await Repository(UserModel, s).count()
    except DatabaseUnavailableError:
        COUNTS.add(SECTION, "units_failed_unavailable")
        return None


async def insert_users(db: Database, n: int) -> None:
    """Commit ``n`` users, one unit of work each."""
    for _ in range(n):
        async with db.session() as s:
            await make_user(s)


async def test_terminated_connections_fail_at_most_one_unit_per_pool(
    db: Database, server: TemporaryPostgres
) -> None:
    committed = 0
    for _ in range(5):
        await insert_users(db, 3)
        committed += 3
        await warm_pool(db, 5)
        async with db.session() as s:  # the write pool holds a connection too
            await Repository(UserModel, s).count()
        assert await terminate_backends(server) >= 1
        COUNTS.add(SECTION, "pg_terminate_backend_rounds")
        first = await count_users(db)
        assert first in (None, committed)
        # The pool discarded every connection on the first failure: this one works.
        assert await count_users(db) == committed
        # The write pool (a separate pool when read-only units autocommit) fails at most once too.
        try:
            await insert_users(db, 1)
            committed += 1
        except DatabaseUnavailableError:
            COUNTS.add(SECTION, "units_failed_unavailable")
        await insert_users(db, 1)
        committed += 1


async def test_pre_ping_hides_terminated_connections(server: TemporaryPostgres) -> None:
    async with Database(server.url, pool_pre_ping=True, pool_size=3) as db:
        await db.drop_all()
        await db.create_all()
        await insert_users(db, 2)
        for _ in range(3):
            await warm_pool(db, 3)
            await terminate_backends(server)
            COUNTS.add(SECTION, "pg_terminate_backend_rounds")
            assert await count_users(db) == 2


async def test_connection_killed_mid_unit_leaves_nothing_behind(
    db: Database, server: TemporaryPostgres
) -> None:
    await insert_users(db, 2)
    with pytest.raises(DatabaseUnavailableError):
        async with db.session() as s:
            await make_user(s, username="half-written", email="half@example.com")
            await terminate_backends(server)
            COUNTS.add(SECTION, "killed_inside_a_unit")
            await make_user(s, username="never", email="never@example.com")
    assert await count_users(db) in (None, 2)
    async with db.session(read_only=True) as s:
        names = (await s.exec(select(UserModel.username))).all()
    assert len(names) == 2
    assert "half-written" not in names


async def test_server_restart(db: Database, server: TemporaryPostgres) -> None:
    committed = 0
    for _ in range(2):
        await insert_users(db, 4)
        committed += 4
        await warm_pool(db, 3)
        server.stop("fast")
        COUNTS.add(SECTION, "server_stops")
        # While it is down every unit fails, quickly and with the datalayer error.
        with pytest.raises(DatabaseUnavailableError):
            async with db.session() as s:
                await make_user(s)
        assert await count_users(db) is None
        server.start()
        COUNTS.add(SECTION, "server_starts")
        first = await count_users(db)
        assert first in (None, committed)
        assert await count_users(db) == committed
        # Writes work again too.
        await insert_users(db, 1)
        committed += 1
    assert await count_users(db) == committed


async def test_restart_during_a_unit_loses_only_that_unit(db: Database, server: TemporaryPostgres) -> None:
    await insert_users(db, 3)
    with pytest.raises(DatabaseUnavailableError):
        async with db.session() as s:
            await make_user(s, username="in-flight", email="in-flight@example.com")
            server.stop("fast")
            COUNTS.add(SECTION, "server_stops")
    server.start()
    COUNTS.add(SECTION, "server_starts")
    await count_users(db)
    async with db.session(read_only=True) as s:
        names = (await s.exec(select(UserModel.username))).all()
    assert len(names) == 3
    assert "in-flight" not in names


async def test_unreachable_server_raises_within_connect_timeout() -> None:
    # A socket that completes the TCP handshake (kernel backlog) but never answers:
    # without a connect timeout the client would wait forever.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        async with Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x", connect_timeout=1) as db:
            for _ in range(2):
                with pytest.raises(DatabaseUnavailableError) as caught:
                    # The outer bound only turns a hang into a failure; it is not a timing assertion.
                    async with asyncio.timeout(30):
                        async with db.session() as s:
                            await Repository(UserModel, s).count()
                assert caught.value.__cause__ is not None
                COUNTS.add(SECTION, "unreachable_connects")
