"""PostgreSQL faults during a stream and a frozen server backend: datalayer errors, no hang.

Uses the run's PostgreSQL server; each case kills or freezes only its own backend.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import sqlalchemy as sa

from datalayer import Database
from datalayer.errors import DatabaseUnavailableError
from datalayer.models import UserModel
from datalayer.repositories import Repository
from tests.helpers import make_user

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def pg(postgres_url: str) -> Database:
    """Return a Database on the test PostgreSQL with 30 users and nothing else."""
    db = Database(postgres_url, command_timeout=2)
    await db.create_all()
    async with db.session() as s:
        await s.exec(sa.delete(UserModel))  # cascades to everything users own
        for i in range(30):
            await make_user(s, username=f"s{i}", email=f"s{i}@example.com")
    return db


async def backend_pid(db: Database) -> int:
    async with db.engine.connect() as conn:
        pid: int = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        await conn.rollback()
    return pid


async def test_connection_lost_during_stream_is_unavailable(pg: Database, postgres_url: str) -> None:
    admin = Database(postgres_url, poolclass=sa.pool.NullPool)
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            async with pg.session(read_only=True) as s:
                conn = await s.connection()
                pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
                seen = 0
                async for _ in Repository(UserModel, s).stream(batch_size=5):
                    seen += 1
                    if seen == 3:
                        async with admin.engine.connect() as other:
                            await other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                            await other.commit()
        assert caught.value.__cause__ is not None
        # The next unit works.
        async with pg.session(read_only=True) as s:
            assert await Repository(UserModel, s).count() == 30
    finally:
        await admin.dispose()
        await pg.dispose()


@pytest.mark.skipif(os.geteuid() != 0, reason="freezing a server backend needs to signal the postgres user")
async def test_frozen_backend_hits_the_command_timeout(pg: Database) -> None:
    pid = await backend_pid(pg)  # the pool's one idle connection: the next unit uses it
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            async with asyncio.timeout(60):  # turns a hang into a failure; not a timing assertion
                async with pg.session() as s:
                    await Repository(UserModel, s).count()
        assert "command_timeout" in str(caught.value)
        assert "cannot connect" not in str(caught.value)
    finally:
        os.kill(pid, signal.SIGCONT)
    async with pg.session(read_only=True) as s:
        assert await Repository(UserModel, s).count() == 30
    await pg.dispose()
