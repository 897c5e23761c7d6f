"""Repository.stream: every matching row once, in paginate/get_all order, on both backends."""

from __future__ import annotations

import pytest
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database
from datalayer.errors import InvalidDataError
from datalayer.models import MessageModel, UserModel
from datalayer.repositories import Filter, OrderBy, Repository, SoftDeleteRepository
from tests.helpers import at, make_session, make_user


async def make_messages(session: AsyncSession, n: int) -> None:
    """Insert ``n`` messages of one session with created_at values repeating in fives."""
    parent = await make_session(session)
    await Repository(MessageModel, session).create_many(
        {
            "session_id": parent.id,
            "sequence_number": i + 1,
            "message_type": "user" if i % 2 else "assistant",
            "created_at": at(i // 5),
        }
        for i in range(n)
    )


@pytest.mark.parametrize("batch_size", [1, 7, 50, 1000])
async def test_stream_yields_get_all_rows_in_order(session: AsyncSession, batch_size: int) -> None:
    await make_messages(session, 53)
    repo = Repository(MessageModel, session)
    expected = [m.id for m in await repo.get_all(limit=1000)]
    streamed = [m.id async for m in repo.stream(batch_size=batch_size)]
    assert streamed == expected
    assert len(set(streamed)) == 53


async def test_stream_with_filters_and_order(session: AsyncSession) -> None:
    await make_messages(session, 31)
    repo = Repository(MessageModel, session)
    filters: list[Filter] = [col(MessageModel.message_type) == "user"]
    order: list[OrderBy] = [col(MessageModel.sequence_number).desc()]
    streamed = [m.sequence_number async for m in repo.stream(filters, order, batch_size=4)]
    assert streamed == list(range(30, 0, -2))


async def test_stream_empty_and_soft_deleted(session: AsyncSession) -> None:
    repo = SoftDeleteRepository(UserModel, session)
    assert [u async for u in repo.stream()] == []
    users = [await make_user(session, created_at=at(n)) for n in range(5)]
    assert await repo.soft_delete(users[1].id)
    visible = [u.id async for u in repo.stream(batch_size=2)]
    assert visible == [u.id for u in reversed(users) if u is not users[1]]
    every = [u.id async for u in repo.stream(include_deleted=True, batch_size=2)]
    assert every == [u.id for u in reversed(users)]


async def test_stream_can_stop_early_and_session_stays_usable(db: Database) -> None:
    async with db.session() as s:
        await make_messages(s, 20)
    async with db.session() as s:
        repo = Repository(MessageModel, s)
        iterator = repo.stream(batch_size=3)
        taken = []
        async for message in iterator:
            taken.append(message.id)
            if len(taken) == 4:
                break
        await iterator.aclose()
        assert taken == [m.id for m in await repo.get_all(limit=4)]
        assert await repo.count() == 20


async def test_stream_rejects_bad_arguments(session: AsyncSession) -> None:
    repo = Repository(UserModel, session)
    with pytest.raises(InvalidDataError):
        [u async for u in repo.stream(batch_size=0)]
    with pytest.raises(InvalidDataError):
        [u async for u in repo.stream(order_by=[col(UserModel.full_name)])]
