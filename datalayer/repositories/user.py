"""``UserRepository``: queries of the ``users`` table."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col

from datalayer.models import UserModel
from datalayer.repositories import params
from datalayer.repositories.writes import UserRepositoryBase
from datalayer.types import utc_now

__all__ = ["UserRepository"]


class UserRepository(UserRepositoryBase):
    """Users: lookups by email (case-insensitive) and username, logins, uniqueness checks."""

    model_type = UserModel

    def _email_is(self, email: str) -> sa.ColumnElement[bool]:
        # lower() on both sides, as in the unique index, so both backends agree.
        return sa.func.lower(col(UserModel.email)) == sa.func.lower(params.text("email", email))

    def _username_is(self, username: str) -> sa.ColumnElement[bool]:
        return col(UserModel.username) == params.text("username", username)

    async def get_by_email(self, email: str) -> UserModel | None:
        """Return the live user with this email (compared case-insensitively), or None."""
        return await self._first(self._select().where(self._email_is(email)))

    async def get_by_username(self, username: str) -> UserModel | None:
        """Return the live user with this username, or None."""
        return await self._first(self._select().where(self._username_is(username)))

    async def update_last_login(self, user_id: UUID) -> bool:
        """Set ``last_login_at`` to now; return False if the user is missing or deleted."""
        key = params.identifier("user_id", user_id)
        return await self._update_returning(key, {"last_login_at": utc_now()}) is not None

    async def email_exists(self, email: str) -> bool:
        """Return True if a live user has this email (case-insensitive)."""
        return await self._any(self._email_is(email))

    async def username_exists(self, username: str) -> bool:
        """Return True if a live user has this username."""
        return await self._any(self._username_is(username))
