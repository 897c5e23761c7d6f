"""Entities returned by writes equal, value by value and type by type, a fresh read of their row.

``create``/``create_many``/``update`` build their entities from the validated row (or the
UPDATE's RETURNING row) instead of loading the row back through the ORM; these tests hold
them to what a new unit of work reads, for every model (factory rows, several seeds, with
non-UTC offsets and short Decimal scales mixed in), on both backends. They also check that
in-place changes of returned entities are persisted and that a rollback leaves none behind.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database
from datalayer.errors import ConstraintViolationError
from datalayer.factories import ALL_FACTORIES, DataFactory, persist, seed_factories
from datalayer.models import EntityModel, SessionModel, SessionTemplateModel
from datalayer.repositories import Repository, SoftDeleteRepository
from datalayer.validation import IMMUTABLE_FIELDS
from tests.helpers import make_session, make_user

SEEDS = (1, 2, 3)
#: Fields an update test leaves alone: keys, unique per parent, or bumped by the repository.
_NOT_UPDATED = IMMUTABLE_FIELDS | {"sequence_number", "version"}


def _shape(value: object) -> object:
    """Return the value's types, recursively through JSON (1 and 1.0 differ, as do list and tuple)."""
    if isinstance(value, dict):
        return (type(value).__mro__[-2].__name__, {k: _shape(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_shape(v) for v in value])
    if isinstance(value, UUID):
        return "UUID"  # asyncpg returns its own UUID subclass
    if isinstance(value, Decimal):
        return ("Decimal", value.as_tuple().exponent)
    if isinstance(value, datetime):
        return ("datetime", value.utcoffset(), value.tzinfo)
    return type(value).__name__


def assert_same(got: EntityModel, fresh: EntityModel) -> None:
    """Assert every field of ``got`` equals the fresh read's, with the same types and scales."""
    for name in type(got).model_fields:
        mine, stored = getattr(got, name), getattr(fresh, name)
        assert mine == stored, f"{type(got).__name__}.{name}: {mine!r} != stored {stored!r}"
        assert _shape(mine) == _shape(stored), f"{type(got).__name__}.{name}: {mine!r} vs stored {stored!r}"
        if isinstance(stored, dict | list):
            assert type(mine) is type(stored), f"{name}: not change-tracked like a loaded entity"


def _perturbed(row: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Return ``row`` with datetimes at non-UTC offsets and Decimals at shorter scales."""
    out = dict(row)
    for name, value in row.items():
        if isinstance(value, datetime) and rng.random() < 0.7:
            out[name] = value.astimezone(timezone(timedelta(hours=rng.choice([-8, 5, 14]), minutes=30)))
        elif isinstance(value, Decimal) and rng.random() < 0.7:
            out[name] = Decimal(str(value.normalize())) if value else Decimal("0.5")
    return out


async def _parents(session: AsyncSession, factory: type[DataFactory[Any]]) -> dict[str, UUID]:
    values: dict[str, UUID] = {}
    for field, parent_factory in factory.__parents__.items():
        (parent,) = await persist(session, parent_factory, 1)
        values[field] = parent.id
    return values


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("factory", ALL_FACTORIES, ids=lambda f: f.__model__.__name__)
async def test_written_entities_equal_a_fresh_read(
    db: Database, factory: type[DataFactory[Any]], seed: int
) -> None:
    seed_factories(seed)
    rng = random.Random(seed)
    model = factory.__model__
    async with db.session() as s:
        parents = await _parents(s, factory)
        rows = [_perturbed(row, rng) for row in factory.rows(3, **parents)]
        if model.__name__ == "MessageModel":
            for number, row in enumerate(rows, start=1):
                row["sequence_number"] = number
        repo = Repository(model, s)
        many = await repo.create_many(rows[:2])
        one = await repo.create(**rows[2])
        written = [*many, one]
        assert all(sa.inspect(e).persistent for e in written)
        assert [await repo.get_by_id(e.id) for e in written] == written  # the identity map holds them
        first, second = (
            {k: v for k, v in _perturbed(row, rng).items() if k not in _NOT_UPDATED}
            for row in factory.rows(2, **parents)
        )
        updated = await repo.update(one.id, **first)
        assert updated is one  # the loaded instance, refreshed
        fresh_update_target = many[0]
        s.expunge(fresh_update_target)  # not loaded: update builds a new entity
        other = await repo.update(fresh_update_target.id, **second)
        assert other is not None and other is not fresh_update_target and sa.inspect(other).persistent
        written = [other, many[1], one]
    async with db.session() as s:
        repo = Repository(model, s)
        for entity in written:
            fresh = await repo.get_by_id(entity.id, include_deleted=True)
            assert fresh is not None
            assert_same(entity, fresh)


def _listen_to_attach_events(session: AsyncSession) -> list[tuple[str, object]]:
    """Return the list every attach event of ``session`` is recorded in, from now on.

    A session with listeners for these events gets entities attached by SQLAlchemy's own
    steps (``datalayer.repositories._orm_state``), one without by datalayer's direct ones.
    """
    seen: list[tuple[str, object]] = []
    for name in ("before_attach", "after_attach", "transient_to_pending", "pending_to_persistent"):
        event.listen(session.sync_session, name, lambda _, instance, name=name: seen.append((name, instance)))
    return seen


@pytest.mark.parametrize("listeners", [False, True], ids=["direct", "attach-listeners"])
async def test_in_place_changes_of_returned_entities_are_persisted(db: Database, listeners: bool) -> None:
    async with db.session() as s:
        user = await make_user(s)
        seen = _listen_to_attach_events(s) if listeners else []
        repo = Repository(SessionTemplateModel, s)
        created = await repo.create(user_id=user.id, name="t", tags=["a"], sdk_options={"k": 1})
        (bulk,) = await repo.create_many([{"user_id": user.id, "name": "b", "tags": []}])
        if listeners:
            assert [name for name, instance in seen if instance is bulk] == [
                "before_attach",
                "after_attach",
                "transient_to_pending",
                "pending_to_persistent",
            ]
        created.tags.append("b")
        created.sdk_options["k"] = 2
        bulk.sdk_options["new"] = True
        updated = await repo.update(bulk.id, tags=["x"])
        assert updated is bulk
        bulk.tags.append("y")
    async with db.session() as s:
        repo = Repository(SessionTemplateModel, s)
        again = await repo.get(created.id)
        assert (again.tags, again.sdk_options) == (["a", "b"], {"k": 2})
        s.expunge_all()
        other = await repo.update(bulk.id, name="c")  # built from the RETURNING row, not loaded
        assert other is not None
        other.tags.append("z")
    async with db.session() as s:
        again = await Repository(SessionTemplateModel, s).get(bulk.id)
        assert (again.name, again.tags, again.sdk_options) == ("c", ["x", "y", "z"], {"new": True})


@pytest.mark.parametrize("listeners", [False, True], ids=["direct", "attach-listeners"])
async def test_rollback_leaves_no_created_entity_in_the_session(db: Database, listeners: bool) -> None:
    async with db.session() as s:
        user = await make_user(s)
    async with db.session() as s:
        if listeners:
            _listen_to_attach_events(s)
        repo = Repository(SessionModel, s)
        kept = await repo.create(user_id=user.id, name="kept")
        async with s.begin_nested() as savepoint:
            undone = await repo.create(user_id=user.id, name="undone")
            many = await repo.create_many([{"user_id": user.id}, {"user_id": user.id}])
            await savepoint.rollback()
        for entity in (undone, *many):
            assert entity not in s and sa.inspect(entity).transient
        assert kept in s and sa.inspect(kept).persistent
        with pytest.raises(ConstraintViolationError):
            await repo.create_many([{"user_id": user.id}, {"user_id": UUID(int=1)}])
        assert {type(e) for e in s.identity_map.values()} <= {SessionModel, type(user)}
        assert len([e for e in s.identity_map.values() if isinstance(e, SessionModel)]) == 1
        await s.rollback()
        assert kept not in s and sa.inspect(kept).transient
        assert not s.identity_map
    async with db.session() as s:
        assert await Repository(SessionModel, s).count() == 0


async def test_soft_delete_refreshes_a_loaded_entity(db: Database) -> None:
    async with db.session() as s:
        created = await make_session(s)
        soft = SoftDeleteRepository(SessionModel, s)
        assert await soft.soft_delete(created.id)
        assert created.deleted_at is not None and created.version == 2
        assert created.updated_at == created.deleted_at
        assert not s.dirty
    async with db.session() as s:
        assert_same(
            created, await SoftDeleteRepository(SessionModel, s).get(created.id, include_deleted=True)
        )
        assert await SoftDeleteRepository(SessionModel, s).restore(created.id)  # not loaded: no RETURNING
        loaded = await SoftDeleteRepository(SessionModel, s).get(created.id)
        assert loaded.deleted_at is None and loaded.version == 3
