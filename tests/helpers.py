"""Small builders shared by the tests (real rows, inserted through the repositories)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import NoReturn
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer.factories import SessionFactory, UserFactory, persist_one
from datalayer.models import EntityModel, SessionModel, SessionStatus, UserModel

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
#: Under CI a missing server binary is a failure, on a laptop a visible skip.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_prerequisite(exc: Exception) -> NoReturn:
    """Fail (under ``CI=true``) or skip with a notice: a server program the test needs is missing."""
    if IN_CI:
        pytest.fail(f"CI=true but a prerequisite is missing: {exc}")
    pytest.skip(f"NOTICE: skipped, a prerequisite is missing: {exc}")


def at(minutes: float) -> datetime:
    """Return an aware UTC time ``minutes`` after a fixed origin (for ordering tests)."""
    return T0 + timedelta(minutes=minutes)


async def make_user(session: AsyncSession, **values: object) -> UserModel:
    """Insert and return a realistic user (factories), active and never logged in unless given."""
    defaults: dict[str, object] = {"is_active": True, "last_login_at": None}
    return await persist_one(session, UserFactory, **{**defaults, **values})


async def make_session(session: AsyncSession, user_id: UUID | None = None, **values: object) -> SessionModel:
    """Insert and return a realistic agent session (factories) in status ``created`` unless given.

    Its user is created too when none is given. Finished statuses come with a
    ``completed_at`` and usage counters unless the caller passes them.
    """
    defaults: dict[str, object] = {"status": SessionStatus.CREATED}
    if user_id is not None:
        defaults["user_id"] = user_id
    return await persist_one(session, SessionFactory, **{**defaults, **values})


async def row_count(session: AsyncSession, model: type[EntityModel]) -> int:
    """Return the number of rows in a model's table, soft-deleted ones included."""
    statement = select(sa.func.count()).select_from(model)
    return (await session.exec(statement)).one()
