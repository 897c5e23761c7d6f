"""A service's data code written from datalayer's README: every call type-checked, no ignore."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from typing import assert_type
from uuid import UUID

from sqlalchemy.orm import selectinload
from sqlmodel import col

from datalayer import (
    ConflictError,
    Database,
    InvalidDataError,
    MessageModel,
    MessageRepository,
    NotFoundError,
    Page,
    Repository,
    SessionModel,
    SessionRepository,
    SessionStatus,
    StaleDataError,
    ToolCallRepository,
    ToolStatistics,
    UserModel,
    UserRepository,
)
from datalayer.models.inputs import NewUser, SessionChanges
from datalayer.repositories import Filter


async def crud(db: Database) -> UUID:
    """Create, read, update, soft-delete and restore; return the session's id."""
    async with db.session() as s:
        users, sessions = UserRepository(s), SessionRepository(s)
        user = await users.get_by_email("ada@example.com")
        if user is None:
            user = await users.create(email="ada@example.com", username="ada", full_name="Ada")
        assert_type(user, UserModel)
        chat = await sessions.create(user_id=user.id, name="first", status="active")
        chat = await sessions.create(user_id=user.id, status=SessionStatus.PAUSED, sdk_options={"model": "x"})
        renamed = await sessions.update(
            chat.id, name="renamed", status="completed", completed_at=datetime.now(UTC)
        )
        assert_type(renamed, SessionModel | None)
        changes: SessionChanges = {"name": "from a typed dict"}
        await sessions.update(chat.id, **changes)
        await sessions.update_if_version(chat.id, chat.version, working_directory="/tmp/x")
        await MessageRepository(s).append(chat.id, message_type="user", content={"text": "hi"})
        await sessions.add_usage(chat.id, total_messages=1, total_cost_usd=0.0125)
        fetched: SessionModel = await sessions.get(chat.id)
        assert await sessions.soft_delete(fetched.id)
        assert await sessions.restore(fetched.id)
        await users.upsert(on=("username",), username="ada", email="ada@example.com")
        new: NewUser = {"email": "bob@example.com", "username": "bob"}
        await users.create(**new)
        # The generic repository checks values at run time only (any table, even your own).
        await Repository(UserModel, s).create(email="eve@example.com", username="eve")
        return chat.id


async def queries(db: Database, user_id: UUID) -> list[ToolStatistics]:
    """Specialized queries and filters built with col()."""
    async with db.session(read_only=True) as s:
        sessions = SessionRepository(s)
        recent: list[SessionModel] = await sessions.get_by_user(user_id, limit=10)
        active = await sessions.count_active_sessions(user_id)
        assert active >= 0 and len(recent) <= 10
        filters: Sequence[Filter] = [
            col(UserModel.is_active).is_(True),
            col(UserModel.username) == "ada",
            col(UserModel.created_at) < datetime.now(UTC),
        ]
        people = await UserRepository(s).get_all(filters=filters, order_by=[col(UserModel.username)])
        assert_type(people, list[UserModel])
        assert await UserRepository(s).count(filters=[col(UserModel.email).endswith("@example.com")]) >= 0
        return await ToolCallRepository(s).get_statistics_by_tool()


async def pages_and_stream(db: Database) -> int:
    """Keyset pagination through every user, then a stream over the same rows."""
    seen = 0
    async with db.session(read_only=True) as s:
        users = UserRepository(s)
        cursor: str | None = None
        while True:
            page: Page[UserModel] = await users.paginate(limit=50, cursor=cursor)
            seen += len(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        async with aclosing(users.stream(order_by=[col(UserModel.created_at).desc()])) as rows:
            async for user in rows:
                assert_type(user, UserModel)
                seen -= 1
    return seen


async def eager(db: Database, session_id: UUID) -> list[str]:
    """Relationships load only when asked for: selectinload, chained too."""
    async with db.session(read_only=True) as s:
        chat = await SessionRepository(s).get(
            session_id,
            options=[
                selectinload(SessionModel.messages),
                selectinload(SessionModel.user).selectinload(UserModel.tasks),
            ],
        )
        messages: list[MessageModel] = chat.messages
        owner: UserModel = chat.user
        users = await UserRepository(s).get_all(
            options=[selectinload(UserModel.sessions).selectinload(SessionModel.tool_calls)]
        )
        return [owner.username, *(str(m.sequence_number) for m in messages), *(u.username for u in users)]


async def errors(db: Database, session_id: UUID) -> str:
    """Each datalayer error is its own type."""
    try:
        async with db.session() as s:
            await UserRepository(s).create(email="ADA@example.com", username="ada2")
    except ConflictError as exc:
        return f"taken: {exc}"
    except InvalidDataError as exc:
        return f"bad {exc.field}: {exc}"
    try:
        async with db.session() as s:
            await SessionRepository(s).get(session_id)
            await SessionRepository(s).update_if_version(session_id, 1, name="x")
    except NotFoundError:
        return "gone"
    except StaleDataError:
        return "changed meanwhile"
    return "ok"
