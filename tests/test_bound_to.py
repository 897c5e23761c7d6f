"""``Database.bound_to``: units of work joining an outer transaction as savepoints (the tests' rollback)."""

from __future__ import annotations

import pytest

from datalayer import Database
from datalayer.errors import ConflictError, ReadOnlyError
from datalayer.models import UserModel
from datalayer.repositories import Repository, UserRepository


async def users(db: Database) -> list[str]:
    """Return the emails of the users a unit of ``db`` sees."""
    async with db.session(read_only=True) as s:
        return sorted(u.email for u in await Repository(UserModel, s).get_all(include_deleted=True))


async def test_units_commit_into_the_outer_transaction_which_rolls_them_back(db: Database) -> None:
    async with db.engine.connect() as connection:
        outer = await connection.begin()
        joined = db.bound_to(connection)
        async with joined.session() as s:
            await UserRepository(s).create(email="kept@example.com", username="kept")
        with pytest.raises(ConflictError):
            async with joined.session() as s:
                await UserRepository(s).create(email="second@example.com", username="second")
                await UserRepository(s).create(email="KEPT@example.com", username="again")
        # The failed unit undid its own rows only; the outer transaction is still usable.
        assert await users(joined) == ["kept@example.com"]
        with pytest.raises(ReadOnlyError):
            async with joined.session(read_only=True) as s:
                await UserRepository(s).create(email="ro@example.com", username="ro")
        assert await users(joined) == ["kept@example.com"]
        await outer.rollback()
    assert await users(db) == []
    assert joined.engine is db.engine
