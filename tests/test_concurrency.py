"""Concurrent units of work: nothing lost, nothing duplicated, on both backends.

Each test runs 20 units of work at once, each with its own connection, and checks the
committed result. The reference's read-then-write versions are run beside ours on
PostgreSQL to show the failure they had.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from uuid import UUID

import pytest
from sqlmodel import col

from datalayer import Database
from datalayer.errors import ConflictError
from datalayer.models import MessageModel
from datalayer.repositories import (
    MessageRepository,
    SessionRepository,
    SessionTemplateRepository,
    WorkingDirectoryArchiveRepository,
)
from tests.helpers import make_session, make_user

WORKERS = 20
ROUNDS = 3


@pytest.fixture
async def wide_db(db: Database) -> Database:
    """The backend's database, reached through a pool with room for every worker at once."""
    return Database(db.url, pool_size=WORKERS + 2, max_overflow=0)


async def _template(db: Database) -> UUID:
    async with db.session() as s:
        user = await make_user(s)
        template = await SessionTemplateRepository(s).create(user_id=user.id, name="t")
        return template.id


async def test_concurrent_usage_increments_are_all_counted(db: Database, wide_db: Database) -> None:
    template_id = await _template(db)

    async def use() -> None:
        async with wide_db.session() as s:
            assert await SessionTemplateRepository(s).update_usage_stats(template_id)

    try:
        for round_number in range(1, ROUNDS + 1):
            await asyncio.gather(*(use() for _ in range(WORKERS)))
            async with db.session() as s:
                assert (
                    await SessionTemplateRepository(s).get(template_id)
                ).usage_count == WORKERS * round_number
    finally:
        await wide_db.dispose()


async def test_concurrent_appends_are_numbered_without_gaps_or_duplicates(
    db: Database, wide_db: Database
) -> None:
    async with db.session() as s:
        parent = (await make_session(s)).id

    async def append(n: int) -> int:
        async with wide_db.session() as s:
            message = await MessageRepository(s).append(parent, message_type="user", content={"n": n})
            return message.sequence_number

    try:
        for round_number in range(1, ROUNDS + 1):
            numbers = await asyncio.gather(*(append(n) for n in range(WORKERS)))
            assert sorted(numbers)[-WORKERS:] == list(
                range((round_number - 1) * WORKERS + 1, round_number * WORKERS + 1)
            )
        async with db.session() as s:
            stored = await MessageRepository(s).get_by_session(parent, limit=1000)
            assert [m.sequence_number for m in stored] == list(range(1, WORKERS * ROUNDS + 1))
    finally:
        await wide_db.dispose()


async def test_concurrent_add_usage_is_exact(db: Database, wide_db: Database) -> None:
    async with db.session() as s:
        parent = (await make_session(s)).id

    async def add() -> None:
        async with wide_db.session() as s:
            assert await SessionRepository(s).add_usage(
                parent, total_messages=1, total_cost_usd=0.1, api_output_tokens=7
            )

    try:
        await asyncio.gather(*(add() for _ in range(WORKERS)))
    finally:
        await wide_db.dispose()
    async with db.session() as s:
        stored = await SessionRepository(s).get(parent)
        assert (stored.total_messages, stored.total_cost_usd, stored.api_output_tokens) == (
            WORKERS,
            Decimal("2.0"),
            7 * WORKERS,
        )


async def test_claim_pending_hands_each_archive_to_one_worker(db: Database, wide_db: Database) -> None:
    async with db.session() as s:
        parent = (await make_session(s)).id
        archives = WorkingDirectoryArchiveRepository(s)
        created = await archives.create_many([{"session_id": parent} for _ in range(45)])

    async def worker() -> list[UUID]:
        mine: list[UUID] = []
        while True:
            async with wide_db.session() as s:
                batch = await WorkingDirectoryArchiveRepository(s).claim_pending(limit=2)
            if not batch:
                return mine
            mine.extend(archive.id for archive in batch)

    try:
        results = await asyncio.gather(*(worker() for _ in range(8)))
    finally:
        await wide_db.dispose()
    claimed = [archive_id for result in results for archive_id in result]
    assert len(claimed) == len(set(claimed)) == 45
    assert set(claimed) == {archive.id for archive in created}


# -- the reference's versions, for contrast (PostgreSQL: SQLite serializes writers anyway) ----


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_reference_read_then_write_increment_loses_updates(db: Database, wide_db: Database) -> None:
    template_id = await _template(db)
    everyone_has_read = asyncio.Barrier(WORKERS)

    async def reference_update_usage_stats() -> None:
        async with wide_db.session() as s:
            repo = SessionTemplateRepository(s)
            template = await repo.get(template_id)
            seen = template.usage_count
            await everyone_has_read.wait()
            await repo.update(template_id, usage_count=seen + 1)

    try:
        await asyncio.gather(*(reference_update_usage_stats() for _ in range(WORKERS)))
    finally:
        await wide_db.dispose()
    async with db.session() as s:
        assert (await SessionTemplateRepository(s).get(template_id)).usage_count == 1  # 19 increments lost


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_reference_next_number_then_insert_collides(db: Database, wide_db: Database) -> None:
    async with db.session() as s:
        parent = (await make_session(s)).id
    everyone_has_read = asyncio.Barrier(WORKERS)

    async def reference_append() -> bool:
        try:
            async with wide_db.session() as s:
                repo = MessageRepository(s)
                number = await repo.get_next_sequence_number(parent)
                await everyone_has_read.wait()
                await repo.create(session_id=parent, sequence_number=number, message_type="user")
        except ConflictError:
            return False
        return True

    try:
        outcomes = await asyncio.gather(*(reference_append() for _ in range(WORKERS)))
    finally:
        await wide_db.dispose()
    assert outcomes.count(True) == 1  # every other writer picked the same number
    async with db.session() as s:
        assert await MessageRepository(s).count([col(MessageModel.session_id) == parent]) == 1
