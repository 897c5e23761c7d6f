"""The example FastAPI service, driven over HTTP (httpx's ASGI transport) on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from datalayer import Database
from datalayer.models import EntityModel, SessionModel, UserModel
from datalayer.repositories import Repository
from datalayer.testing import free_port
from examples.service import create_app


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """Yield an HTTP client talking to the service built around the backend's test database."""
    transport = httpx.ASGITransport(app=create_app(db))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        yield http


async def rows(db: Database, model: type[EntityModel]) -> int:
    """Return how many rows a table holds, soft-deleted ones included."""
    async with db.session(read_only=True) as s:
        return await Repository(model, s).count(include_deleted=True)


async def new_user(client: httpx.AsyncClient, name: str = "ada") -> dict[str, Any]:
    """Create a user through the API and return its JSON."""
    response = await client.post("/users", json={"email": f"{name}@example.com", "username": name})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_and_get_a_user(client: httpx.AsyncClient) -> None:
    created = await new_user(client)
    assert created["email"] == "ada@example.com"
    assert created["is_active"] is True
    assert created["deleted_at"] is None
    UUID(created["id"])

    fetched = await client.get(f"/users/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_unknown_user_is_404(client: httpx.AsyncClient) -> None:
    missing = uuid4()
    response = await client.get(f"/users/{missing}")
    assert response.status_code == 404
    assert response.json() == {"detail": f"UserModel with id={missing} not found"}
    assert (await client.get("/users/not-a-uuid")).status_code == 422  # FastAPI's own path check


async def test_duplicate_email_is_409_and_writes_nothing(client: httpx.AsyncClient, db: Database) -> None:
    await new_user(client)
    response = await client.post("/users", json={"email": "ADA@example.com", "username": "other"})
    assert response.status_code == 409
    assert set(response.json()) == {"detail"}
    assert await rows(db, UserModel) == 1


async def test_invalid_user_is_422_with_the_field_and_writes_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await client.post("/users", json={"email": "x" * 400, "username": "ada"})
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "email"
    assert "email" in body["detail"]
    unknown = await client.post("/users", json={"email": "a@b.c", "username": "a", "admin": True})
    assert unknown.status_code == 422
    assert await rows(db, UserModel) == 0


async def test_delete_user_is_a_soft_delete(client: httpx.AsyncClient, db: Database) -> None:
    user = await new_user(client)
    deleted = await client.delete(f"/users/{user['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await client.get(f"/users/{user['id']}")).status_code == 404
    assert (await client.delete(f"/users/{user['id']}")).status_code == 404
    async with db.session(read_only=True) as s:
        row = await Repository(UserModel, s).get_by_id(UUID(user["id"]), include_deleted=True)
    assert row is not None and row.is_deleted
    # The address is free again for a new account.
    again = await client.post("/users", json={"email": "ada@example.com", "username": "ada"})
    assert again.status_code == 201


async def test_session_lifecycle(client: httpx.AsyncClient, db: Database) -> None:
    user = await new_user(client)
    created = await client.post(
        "/sessions", json={"user_id": user["id"], "name": "first", "sdk_options": {"model": "m"}}
    )
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["user_id"] == user["id"]
    assert (session["status"], session["mode"], session["total_messages"]) == ("created", "interactive", 0)
    assert session["sdk_options"] == {"model": "m"}

    assert (await client.get(f"/sessions/{session['id']}")).json() == session

    patched = await client.patch(f"/sessions/{session['id']}", json={"status": "active", "name": "renamed"})
    assert patched.status_code == 200
    assert (patched.json()["status"], patched.json()["name"]) == ("active", "renamed")
    assert patched.json()["mode"] == "interactive"  # untouched fields keep their values
    unchanged = await client.patch(f"/sessions/{session['id']}", json={})
    assert unchanged.status_code == 200
    assert unchanged.json()["name"] == "renamed"

    async with db.session(read_only=True) as s:
        stored = await Repository(SessionModel, s).get(UUID(session["id"]))
    assert (stored.status, stored.name) == ("active", "renamed")


async def test_bad_session_update_is_422_and_changes_nothing(client: httpx.AsyncClient, db: Database) -> None:
    user = await new_user(client)
    session = (await client.post("/sessions", json={"user_id": user["id"], "name": "keep"})).json()

    bad = await client.patch(f"/sessions/{session['id']}", json={"status": "bogus", "name": "lost"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "status"
    null = await client.patch(f"/sessions/{session['id']}", json={"status": None})
    assert null.status_code == 422
    assert null.json()["field"] == "status"

    async with db.session(read_only=True) as s:
        stored = await Repository(SessionModel, s).get(UUID(session["id"]))
    assert (stored.status, stored.name) == ("created", "keep")
    missing = await client.patch(f"/sessions/{uuid4()}", json={"name": "x"})
    assert missing.status_code == 404
    assert (await client.get(f"/sessions/{uuid4()}")).status_code == 404


async def test_session_for_a_missing_or_deleted_user_is_422(client: httpx.AsyncClient, db: Database) -> None:
    response = await client.post("/sessions", json={"user_id": str(uuid4())})
    assert response.status_code == 422
    assert response.json()["field"] == "user_id"

    user = await new_user(client)
    assert (await client.delete(f"/users/{user['id']}")).status_code == 204
    response = await client.post("/sessions", json={"user_id": user["id"]})
    assert response.status_code == 422
    bad_mode = await client.post("/sessions", json={"user_id": str(uuid4()), "mode": "nope"})
    assert bad_mode.status_code == 422
    assert await rows(db, SessionModel) == 0


async def test_user_sessions_are_paginated_newest_first(client: httpx.AsyncClient) -> None:
    user = await new_user(client)
    other = await new_user(client, "bob")
    ids = []
    for n in range(3):
        response = await client.post("/sessions", json={"user_id": user["id"], "name": f"s{n}"})
        ids.append(response.json()["id"])
    await client.post("/sessions", json={"user_id": other["id"]})

    listed = await client.get(f"/users/{user['id']}/sessions")
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()] == ids[::-1]
    page = await client.get(f"/users/{user['id']}/sessions", params={"skip": 1, "limit": 1})
    assert [s["name"] for s in page.json()] == ["s1"]
    past_the_end = await client.get(f"/users/{user['id']}/sessions", params={"skip": 3})
    assert past_the_end.json() == []

    bad = await client.get(f"/users/{user['id']}/sessions", params={"limit": 0})
    assert bad.status_code == 422
    assert bad.json()["field"] == "limit"
    assert (await client.get(f"/users/{uuid4()}/sessions")).status_code == 404


async def test_unreachable_database_is_503(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'x.db'}"
    else:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    async with Database(url, connect_timeout=5) as down:
        transport = httpx.ASGITransport(app=create_app(down))
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
            response = await http.get(f"/users/{uuid4()}")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert set(response.json()) == {"detail"}
