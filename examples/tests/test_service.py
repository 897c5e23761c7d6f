"""The example service over HTTP, tested the way a datalayer user would: the plugin and the factories.

Each test seeds its rows with polyfactory (``create_async``/``create_batch_async``) into the
test's unit of work; the service's own units commit into the same transaction, which the plugin
rolls back afterwards. Run on SQLite and PostgreSQL: ``pytest examples/tests --datalayer-backend
sqlite --datalayer-backend postgresql`` (this repository's ``pytest`` does both).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database
from datalayer.factories import SessionFactory, UserFactory
from datalayer.models import SessionModel, SessionStatus, UserModel
from datalayer.repositories import Repository
from examples.service import create_app


@pytest.fixture
async def client(datalayer_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """Yield an HTTP client of the service, built around the test's database."""
    transport = httpx.ASGITransport(app=create_app(datalayer_db))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        yield http


async def test_get_a_seeded_user(client: httpx.AsyncClient) -> None:
    user = await UserFactory.create_async()
    response = await client.get(f"/users/{user.id}")
    assert response.status_code == 200
    assert response.json()["email"] == user.email
    assert response.json()["username"] == user.username


async def test_create_user_commits_and_the_row_is_there(
    client: httpx.AsyncClient, datalayer_session: AsyncSession
) -> None:
    existing = await UserFactory.create_async()
    response = await client.post("/users", json={"email": "new@example.com", "username": "new"})
    assert response.status_code == 201
    users = await Repository(UserModel, datalayer_session).get_all()
    assert sorted(u.email for u in users) == sorted([existing.email, "new@example.com"])


async def test_a_taken_email_is_409_and_writes_nothing(
    client: httpx.AsyncClient, datalayer_session: AsyncSession
) -> None:
    user = await UserFactory.create_async()
    response = await client.post("/users", json={"email": user.email.upper(), "username": "other"})
    assert response.status_code == 409
    assert await Repository(UserModel, datalayer_session).count() == 1


async def test_sessions_of_a_user_newest_first_and_paginated(client: httpx.AsyncClient) -> None:
    mine = await SessionFactory.create_batch_async(3)  # three sessions of one new user
    await SessionFactory.create_async()  # someone else's
    user_id = mine[0].user_id
    newest_first = sorted(mine, key=lambda s: (s.created_at, s.id), reverse=True)

    listed = await client.get(f"/users/{user_id}/sessions")
    assert [s["id"] for s in listed.json()] == [str(s.id) for s in newest_first]
    page = await client.get(f"/users/{user_id}/sessions", params={"skip": 1, "limit": 1})
    assert [s["id"] for s in page.json()] == [str(newest_first[1].id)]


async def test_patch_session_changes_only_the_fields_sent(
    client: httpx.AsyncClient, datalayer_session: AsyncSession
) -> None:
    session = await SessionFactory.create_async(status=SessionStatus.CREATED, name="keep")
    response = await client.patch(f"/sessions/{session.id}", json={"status": "active"})
    assert response.status_code == 200
    await datalayer_session.refresh(session)  # the service changed it in its own unit
    assert (session.status, session.name) == (SessionStatus.ACTIVE, "keep")


async def test_a_bad_status_is_422_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, datalayer_session: AsyncSession
) -> None:
    session = await SessionFactory.create_async(status=SessionStatus.CREATED)
    response = await client.patch(f"/sessions/{session.id}", json={"status": "bogus"})
    assert response.status_code == 422
    assert response.json()["field"] == "status"
    await datalayer_session.refresh(session)
    assert session.status == SessionStatus.CREATED


async def test_no_session_for_a_deleted_user(
    client: httpx.AsyncClient, datalayer_session: AsyncSession
) -> None:
    gone = await UserFactory.create_async(deleted_at=datetime(2026, 1, 1, tzinfo=UTC))
    response = await client.post("/sessions", json={"user_id": str(gone.id)})
    assert response.status_code == 422
    assert response.json()["field"] == "user_id"
    assert await Repository(SessionModel, datalayer_session).count() == 0


async def test_delete_user_is_a_soft_delete(
    client: httpx.AsyncClient, datalayer_session: AsyncSession
) -> None:
    user = await UserFactory.create_async()
    assert (await client.delete(f"/users/{user.id}")).status_code == 204
    assert (await client.get(f"/users/{user.id}")).status_code == 404
    await datalayer_session.refresh(user)
    assert user.deleted_at is not None
