"""Small builders shared by the tests (real rows, inserted through the repositories)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer.models import EntityModel, SessionModel, UserModel
from datalayer.repositories import Repository

_serial = count(1)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """Return an aware UTC time ``minutes`` after a fixed origin (for ordering tests)."""
    return T0 + timedelta(minutes=minutes)


async def make_user(session: AsyncSession, **values: object) -> UserModel:
    """Insert and return a user with unique email and username."""
    n = next(_serial)
    defaults: dict[str, object] = {"email": f"user{n}@example.com", "username": f"user{n}"}
    return await Repository(UserModel, session).create(**{**defaults, **values})


async def make_session(session: AsyncSession, user_id: UUID | None = None, **values: object) -> SessionModel:
    """Insert and return an agent session (and its user when none is given)."""
    if user_id is None:
        user_id = (await make_user(session)).id
    return await Repository(SessionModel, session).create(user_id=user_id, **values)


async def row_count(session: AsyncSession, model: type[EntityModel]) -> int:
    """Return the number of rows in a model's table, soft-deleted ones included."""
    statement = select(sa.func.count()).select_from(model)
    return (await session.exec(statement)).one()
