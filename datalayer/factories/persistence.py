"""Persist factory-built rows through the repositories, creating missing parents."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer.errors import InvalidDataError, translate_errors
from datalayer.factories.base import DataFactory
from datalayer.models import EntityModel, MessageModel
from datalayer.repositories import Repository

__all__ = ["persist", "persist_one", "using_session"]

T = TypeVar("T", bound=EntityModel)


async def persist(
    session: AsyncSession, factory: type[DataFactory[T]], count: int = 1, **overrides: Any
) -> list[T]:
    """Build ``count`` entities with ``factory``, insert them in one ``create_many`` and return them.

    Each required foreign key not given in ``overrides`` gets one new parent (built and
    persisted the same way), shared by the whole batch: ``persist(s, MessageFactory, 5)``
    creates one user, one session and five messages of that session. Message sequence
    numbers continue after the highest one already stored for the session. Nothing is
    committed: the caller's unit of work does.
    """
    if count < 0:
        raise InvalidDataError.for_field("count", count, "must be >= 0")
    values = dict(overrides)
    for field, parent_factory in factory.__parents__.items():
        if field not in values:
            (parent,) = await persist(session, parent_factory, 1)
            values[field] = parent.id
    if factory.model_class() is MessageModel and "sequence_number" not in values:
        start = await _last_sequence_number(session, values["session_id"])
        rows = [factory.process_kwargs(**values, sequence_number=start + n) for n in range(1, count + 1)]
    else:
        rows = factory.rows(count, **values)
    return await Repository(factory.model_class(), session).create_many(rows)


async def persist_one(session: AsyncSession, factory: type[DataFactory[T]], **overrides: Any) -> T:
    """Build, insert and return one entity (see :func:`persist`)."""
    (entity,) = await persist(session, factory, 1, **overrides)
    return entity


@contextmanager
def using_session(session: AsyncSession) -> Generator[AsyncSession]:
    """Yield ``session`` as the unit of work of every factory's ``create_async``/``create_batch_async``.

    The previous one (usually none) is restored when the block ends.
    """
    previous = DataFactory.__async_session__
    DataFactory.__async_session__ = session
    try:
        yield session
    finally:
        DataFactory.__async_session__ = previous


async def _last_sequence_number(session: AsyncSession, session_id: UUID) -> int:
    statement = select(sa.func.coalesce(sa.func.max(col(MessageModel.sequence_number)), 0)).where(
        col(MessageModel.session_id) == session_id
    )
    with translate_errors():
        return int((await session.exec(statement)).one())
