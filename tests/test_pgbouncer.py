"""datalayer through pgbouncer in transaction pooling mode (Debian's pgbouncer package).

The module starts its own PostgreSQL server and a pgbouncer in front of it (as the
``postgres`` user, with a pidfile). Skipped with a notice when pgbouncer is not
installed, a failure when ``CI=true``. The whole suite can also run through pgbouncer:
``DATALAYER_TEST_PGBOUNCER=1 pytest`` (see tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import select

from datalayer import Database
from datalayer.errors import ConflictError, DatabaseUnavailableError, ReadOnlyError
from datalayer.models import UserModel
from datalayer.repositories import Repository
from datalayer.testing import (
    COUNTS,
    PgBouncerNotAvailable,
    PostgresNotAvailable,
    TemporaryPgBouncer,
    TemporaryPostgres,
)
from tests.helpers import make_user, missing_prerequisite

SECTION = "pgbouncer (tests/test_pgbouncer.py)"
SERVER_POOL = 4


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[TemporaryPostgres, TemporaryPgBouncer]]:
    """Start a PostgreSQL server and a pgbouncer (transaction mode, 4 server connections)."""
    try:
        pg = TemporaryPostgres(database="bounced")
        bouncer = TemporaryPgBouncer(pg, pool_size=SERVER_POOL)
    except (PostgresNotAvailable, PgBouncerNotAvailable) as exc:
        missing_prerequisite(exc)
    pg.start()
    try:
        bouncer.start()
        yield pg, bouncer
    finally:
        bouncer.cleanup()
        pg.cleanup()


@pytest.fixture
async def db(servers: tuple[TemporaryPostgres, TemporaryPgBouncer]) -> AsyncIterator[Database]:
    """Return a Database through pgbouncer, with empty tables."""
    _, bouncer = servers
    if not bouncer.running:
        bouncer.start()
    database = Database(bouncer.url, pgbouncer=True, pool_size=20, connect_timeout=5)
    await database.drop_all()
    await database.create_all()
    try:
        yield database
    finally:
        await database.dispose()


def test_config_is_transaction_pooling(servers: tuple[TemporaryPostgres, TemporaryPgBouncer]) -> None:
    _, bouncer = servers
    assert "pool_mode = transaction" in bouncer.config()
    assert bouncer.pid_file.read_text().strip().isdigit()


async def test_repository_round_trips(db: Database) -> None:
    # Many statements of the same shape on a queue pool: with asyncpg's default statement
    # cache these fail with "prepared statement ... does not exist" behind pgbouncer.
    ids = []
    for _ in range(30):
        async with db.session() as s:
            ids.append((await make_user(s)).id)
    for user_id in ids:
        async with db.session(read_only=True) as s:
            assert (await Repository(UserModel, s).get(user_id)).id == user_id
    async with db.session(read_only=True) as s:
        assert await Repository(UserModel, s).count() == 30
    COUNTS.add(SECTION, "units_of_work", 61)


async def test_many_clients_share_few_server_connections(
    db: Database, servers: tuple[TemporaryPostgres, TemporaryPgBouncer]
) -> None:
    pg, _ = servers
    workers = 40

    async def worker(n: int) -> None:
        for i in range(5):
            async with db.session() as s:
                await make_user(s, username=f"w{n}-{i}", email=f"w{n}-{i}@example.com")
                await asyncio.sleep(0)
            async with db.session(read_only=True) as s:
                await Repository(UserModel, s).count()

    await asyncio.gather(*(worker(n) for n in range(workers)))
    COUNTS.add(SECTION, "units_of_work", workers * 10)
    async with db.session(read_only=True) as s:
        assert await Repository(UserModel, s).count() == workers * 5
    # Behind the pooler the server saw at most pgbouncer's pool, not one backend per client.
    async with Database(pg.url, poolclass=sa.pool.NullPool) as direct, direct.engine.connect() as conn:
        backends = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    assert backends is not None
    assert backends <= SERVER_POOL


async def test_errors_and_read_only_units_through_pgbouncer(db: Database) -> None:
    async with db.session() as s:
        await make_user(s, email="same@example.com", username="same")
    with pytest.raises(ConflictError):
        async with db.session() as s:
            await make_user(s, email="same@example.com", username="other")
    with pytest.raises(ReadOnlyError):
        async with db.session(read_only=True) as s:
            await make_user(s)
    with pytest.raises(ReadOnlyError):
        # A write that bypasses the ORM is refused by the server (BEGIN READ ONLY).
        async with db.session(read_only=True) as s:
            await s.connection()
            await (await s.connection()).execute(sa.text("CREATE TABLE nope (x int)"))
    async with db.session(read_only=True) as s:
        assert (await s.exec(select(UserModel.username))).all() == ["same"]


async def test_pgbouncer_restart(db: Database, servers: tuple[TemporaryPostgres, TemporaryPgBouncer]) -> None:
    _, bouncer = servers
    async with db.session() as s:
        await make_user(s)
    bouncer.stop()
    COUNTS.add(SECTION, "pgbouncer_restarts")
    with pytest.raises(DatabaseUnavailableError):
        async with db.session(read_only=True) as s:
            await Repository(UserModel, s).count()
    bouncer.start()
    outcomes: list[int | None] = []
    for _ in range(2):
        try:
            async with db.session(read_only=True) as s:
                outcomes.append(await Repository(UserModel, s).count())
        except DatabaseUnavailableError:
            outcomes.append(None)
    assert outcomes[0] in (None, 1)
    assert outcomes[1] == 1
