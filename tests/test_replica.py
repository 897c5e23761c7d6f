"""Read replicas: ``Database(url, replica_url=...)`` against a real streaming replica.

The module starts a primary and a hot standby copied from it with ``pg_basebackup -R``.
Read-only units of work go to the standby (``pg_is_in_recovery()`` is true there), the
rest to the primary; a write in a read-only unit fails with ``ReadOnlyError`` on every
backend, replica or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import select

from datalayer import Database
from datalayer.errors import ReadOnlyError
from datalayer.models import UserModel
from datalayer.repositories import Repository
from datalayer.testing import COUNTS, PostgresNotAvailable, TemporaryPostgres, TemporaryReplica
from tests.helpers import make_user, missing_prerequisite, row_count

SECTION = "replica (tests/test_replica.py)"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[TemporaryPostgres, TemporaryReplica]]:
    """Start a primary and a streaming replica of it."""
    try:
        primary = TemporaryPostgres(database="replicated")
    except PostgresNotAvailable as exc:
        missing_prerequisite(exc)
    primary.start()
    replica = TemporaryReplica(primary)
    try:
        replica.start()
        yield primary, replica
    finally:
        replica.cleanup()
        primary.cleanup()


async def wait_for_replay(db: Database, timeout: float = 30.0) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    # The insert position, not pg_current_wal_lsn(): with synchronous_commit=off a commit
    # record may still sit in the WAL buffers, behind the write position.
    assert db.replica_engine is not None
    async with db.engine.connect() as conn:
        target = await conn.scalar(sa.text("SELECT pg_current_wal_insert_lsn()"))
    async with asyncio.timeout(timeout):
        while True:
            async with db.replica_engine.connect() as conn:
                caught_up = await conn.scalar(
                    sa.text("SELECT pg_last_wal_replay_lsn() >= CAST(:target AS pg_lsn)"), {"target": target}
                )
            if caught_up:
                return
            await asyncio.sleep(0.02)


@pytest.fixture
async def replicated(servers: tuple[TemporaryPostgres, TemporaryReplica]) -> AsyncIterator[Database]:
    """Return a Database writing to the primary and reading from the replica, tables empty."""
    primary, replica = servers
    database = Database(primary.url, replica_url=replica.url, connect_timeout=5)
    await database.drop_all()
    await database.create_all()
    await wait_for_replay(database)
    try:
        yield database
    finally:
        await database.dispose()


async def in_recovery(session: object) -> bool:
    """Return ``pg_is_in_recovery()`` on the unit of work's connection."""
    from sqlmodel.ext.asyncio.session import AsyncSession

    assert isinstance(session, AsyncSession)
    return bool((await session.exec(select(sa.func.pg_is_in_recovery()))).one())


async def test_reads_go_to_the_replica_and_writes_to_the_primary(replicated: Database) -> None:
    async with replicated.session() as s:
        assert not await in_recovery(s)
        created = await make_user(s, username="written-on-primary")
    await wait_for_replay(replicated)
    async with replicated.session(read_only=True) as s:
        assert await in_recovery(s)
        assert (await Repository(UserModel, s).get(created.id)).username == "written-on-primary"
    COUNTS.add(SECTION, "replica_reads", 1)


async def test_writes_in_a_read_only_unit_fail_clearly(replicated: Database) -> None:
    with pytest.raises(ReadOnlyError):
        async with replicated.session(read_only=True) as s:
            await make_user(s)
    with pytest.raises(ReadOnlyError):
        # Raw SQL bypasses the ORM guard; the standby itself refuses (SQLSTATE 25006).
        async with replicated.session(read_only=True) as s:
            await (await s.connection()).execute(sa.text("CREATE TABLE nope (x int)"))
    async with replicated.session() as s:
        assert await row_count(s, UserModel) == 0
    COUNTS.add(SECTION, "refused_writes", 2)


async def test_replica_lag_and_read_your_writes(replicated: Database) -> None:
    assert replicated.replica_engine is not None
    async with replicated.replica_engine.connect() as conn:
        await conn.execute(sa.text("SELECT pg_wal_replay_pause()"))
    try:
        async with replicated.session() as s:
            await make_user(s, username="fresh")
        # The replica has not replayed the write yet: a read-only unit does not see it...
        async with replicated.session(read_only=True) as s:
            assert await row_count(s, UserModel) == 0
        # ...a normal unit (the primary) does: read your own writes there.
        async with replicated.session() as s:
            assert await row_count(s, UserModel) == 1
    finally:
        async with replicated.replica_engine.connect() as conn:
            await conn.execute(sa.text("SELECT pg_wal_replay_resume()"))
    await wait_for_replay(replicated)
    async with replicated.session(read_only=True) as s:
        assert await row_count(s, UserModel) == 1
    COUNTS.add(SECTION, "lagging_reads", 1)


async def test_read_only_unit_refuses_writes_without_a_replica(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s)
    with pytest.raises(ReadOnlyError):
        async with db.session(read_only=True) as s:
            await Repository(UserModel, s).update(user.id, username="changed")
    with pytest.raises(ReadOnlyError):
        async with db.session(read_only=True) as s:
            await Repository(UserModel, s).delete(user.id)
    async with db.session(read_only=True) as s:
        again = await Repository(UserModel, s).get(user.id)
        assert again.username == user.username
        # Reading stays possible after the refusal in a new unit.
        assert await row_count(s, UserModel) == 1
