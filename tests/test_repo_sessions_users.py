"""SessionRepository and UserRepository: every reference method, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import assert_type
from uuid import uuid4

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database
from datalayer.errors import InvalidDataError, StaleDataError
from datalayer.models import SessionModel, SessionStatus, UserModel
from datalayer.repositories import SessionRepository, UserRepository
from tests.helpers import at, make_session, make_user

# -- SessionRepository -------------------------------------------------------------------


async def test_get_by_user_newest_first_paginated_without_deleted(session: AsyncSession) -> None:
    repo = SessionRepository(session)
    owner = await make_user(session)
    other = await make_user(session)
    mine = [await make_session(session, owner.id, name=f"s{n}", created_at=at(n)) for n in range(5)]
    await make_session(session, other.id, created_at=at(10))
    await repo.soft_delete(mine[3].id)
    page = await repo.get_by_user(owner.id)
    assert_type(page, list[SessionModel])
    assert [s.name for s in page] == ["s4", "s2", "s1", "s0"]
    assert [s.name for s in await repo.get_by_user(owner.id, skip=1, limit=2)] == ["s2", "s1"]
    assert await repo.get_by_user(uuid4()) == []
    with pytest.raises(InvalidDataError):
        await repo.get_by_user(owner.id, limit=0)


async def test_active_sessions_and_their_count(session: AsyncSession) -> None:
    repo = SessionRepository(session)
    owner = await make_user(session)
    made = {
        status: await make_session(session, owner.id, status=status, created_at=at(n))
        for n, status in enumerate(SessionStatus)
    }
    deleted_active = await make_session(session, owner.id, status="active", created_at=at(20))
    await repo.soft_delete(deleted_active.id)
    await make_session(session, status="active")  # another user's
    active = await repo.get_active_sessions(owner.id)
    assert [s.status for s in active] == [
        SessionStatus.PROCESSING,
        SessionStatus.WAITING,
        SessionStatus.ACTIVE,
    ]
    assert {s.id for s in active} == {made[s].id for s in ("active", "waiting", "processing")}  # type: ignore[index]  # StrEnum keys accept their values
    assert await repo.count_active_sessions(owner.id) == 3
    assert await repo.count_active_sessions(uuid4()) == 0
    assert await repo.get_active_sessions(uuid4()) == []


async def test_get_by_status(session: AsyncSession) -> None:
    repo = SessionRepository(session)
    owner = await make_user(session)
    for n in range(4):
        await make_session(session, owner.id, name=f"p{n}", status="paused", created_at=at(n))
    await make_session(session, owner.id, status="failed")
    gone = await make_session(session, owner.id, status="paused", created_at=at(9))
    await repo.soft_delete(gone.id)
    assert [s.name for s in await repo.get_by_status("paused")] == ["p3", "p2", "p1", "p0"]
    assert [s.name for s in await repo.get_by_status(SessionStatus.PAUSED, skip=3)] == ["p0"]
    assert await repo.get_by_status("terminated") == []
    with pytest.raises(InvalidDataError) as caught:
        await repo.get_by_status("sleeping")
    assert caught.value.field == "status"


async def test_get_completed_before(session: AsyncSession) -> None:
    repo = SessionRepository(session)
    owner = await make_user(session)
    cutoff = at(100)
    old = [
        await make_session(session, owner.id, name=f"old-{status}", status=status, completed_at=at(n))
        for n, status in ((30, "completed"), (10, "failed"), (20, "terminated"))
    ]
    await make_session(session, owner.id, name="recent", status="completed", completed_at=at(200))
    await make_session(session, owner.id, name="at-cutoff", status="completed", completed_at=cutoff)
    await make_session(session, owner.id, name="paused", status="paused", completed_at=at(5))
    await make_session(session, owner.id, name="no-time", status="completed", completed_at=None)
    deleted = await make_session(session, owner.id, status="completed", completed_at=at(1))
    await repo.soft_delete(deleted.id)
    found = await repo.get_completed_before(cutoff)
    assert [s.name for s in found] == ["old-failed", "old-terminated", "old-completed"]
    assert [s.name for s in await repo.get_completed_before(cutoff, limit=1)] == ["old-failed"]
    assert len(old) == 3
    with pytest.raises(InvalidDataError) as caught:
        await repo.get_completed_before(datetime(2026, 1, 1))  # naive
    assert caught.value.field == "cutoff_date"


async def test_soft_delete_sets_aware_timestamps(session: AsyncSession) -> None:
    repo = SessionRepository(session)
    created = await make_session(session, updated_at=at(0))
    before = datetime.now(UTC)
    assert await repo.soft_delete(created.id) is True
    assert created.deleted_at is not None and created.deleted_at.tzinfo is not None
    assert created.deleted_at >= before - timedelta(seconds=1)
    assert created.updated_at > at(0)
    assert await repo.get_by_id(created.id) is None


async def test_update_metrics_sets_absolute_values(session: AsyncSession) -> None:
    repo = SessionRepository(session)
    created = await make_session(session, total_messages=3, api_input_tokens=10)
    assert await repo.update_metrics(created.id, total_messages=7, total_cost_usd=0.125) is True
    assert created.total_messages == 7
    assert created.total_cost_usd == Decimal("0.125")
    assert created.api_input_tokens == 10  # not given: unchanged
    assert await repo.update_metrics(uuid4(), total_messages=1) is False
    with pytest.raises(InvalidDataError) as caught:
        await repo.update_metrics(created.id, api_output_tokens=-5)
    assert caught.value.field == "api_output_tokens"


async def test_update_metrics_with_stale_version_is_refused(db: Database) -> None:
    async with db.session() as s:
        created = await make_session(s)
    async with db.session() as s:
        assert await SessionRepository(s).update_metrics(created.id, total_messages=1, expected_version=1)
    with pytest.raises(StaleDataError):
        async with db.session() as s:
            await SessionRepository(s).update_metrics(created.id, total_messages=9, expected_version=1)
    async with db.session() as s:
        assert (await SessionRepository(s).get(created.id)).total_messages == 1


async def test_add_usage_adds_atomically_and_exactly(session: AsyncSession) -> None:
    repo = SessionRepository(session)
    created = await make_session(session, total_messages=1, total_cost_usd=Decimal("0.1"))
    for _ in range(10):
        assert await repo.add_usage(created.id, total_messages=2, total_cost_usd=0.1, api_input_tokens=100)
    assert created.total_messages == 21
    assert created.total_cost_usd == Decimal("1.1")
    assert created.api_input_tokens == 1000
    assert created.api_output_tokens == 0
    assert await repo.add_usage(uuid4(), total_messages=1) is False
    with pytest.raises(InvalidDataError):
        await repo.add_usage(created.id, total_cost_usd=Decimal("0.0000000001"))
    with pytest.raises(InvalidDataError):
        await repo.add_usage(created.id, total_messages=2**64)


# -- UserRepository ----------------------------------------------------------------------


async def test_get_by_email_is_case_insensitive_and_skips_deleted(session: AsyncSession) -> None:
    repo = UserRepository(session)
    ada = await make_user(session, email="Ada@Example.COM", username="ada")
    found = await repo.get_by_email("ada@example.com")
    assert_type(found, UserModel | None)
    assert found is ada
    assert await repo.get_by_email("ADA@EXAMPLE.COM") is ada
    assert await repo.get_by_email("bob@example.com") is None
    assert await repo.email_exists("aDa@example.com") is True
    assert await repo.email_exists("nobody@example.com") is False
    await repo.soft_delete(ada.id)
    assert await repo.get_by_email("ada@example.com") is None
    assert await repo.email_exists("ada@example.com") is False


async def test_get_by_username_and_username_exists(session: AsyncSession) -> None:
    repo = UserRepository(session)
    ada = await make_user(session, username="ada")
    assert await repo.get_by_username("ada") is ada
    assert await repo.get_by_username("Ada") is None  # usernames are case-sensitive
    assert await repo.username_exists("ada") is True
    assert await repo.username_exists("bob") is False
    await repo.soft_delete(ada.id)
    assert await repo.get_by_username("ada") is None
    assert await repo.username_exists("ada") is False


@pytest.mark.parametrize("hostile", ["' OR 1=1 --", 'a"b', "x\\y", "%", "_", "*"])
async def test_lookups_take_text_literally(session: AsyncSession, hostile: str) -> None:
    repo = UserRepository(session)
    await make_user(session, email="real@example.com", username="real")
    assert await repo.get_by_email(hostile) is None
    assert await repo.get_by_username(hostile) is None
    assert await repo.email_exists(hostile) is False


async def test_update_last_login(session: AsyncSession) -> None:
    repo = UserRepository(session)
    user = await make_user(session)
    assert user.last_login_at is None
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert await repo.update_last_login(user.id) is True
    login = (await repo.get(user.id)).last_login_at
    assert login is not None and login >= before
    assert login.utcoffset() == timedelta(0)
    assert await repo.update_last_login(uuid4()) is False
    await repo.soft_delete(user.id)
    assert await repo.update_last_login(user.id) is False
