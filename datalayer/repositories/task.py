"""``TaskRepository``: queries of the ``tasks`` table."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer.models import TaskModel
from datalayer.repositories import params
from datalayer.repositories.base import DEFAULT_LIMIT, SoftDeleteRepository, check_page
from datalayer.sql import array_overlap

__all__ = ["TaskRepository"]


class TaskRepository(SoftDeleteRepository[TaskModel]):
    """Tasks: the scheduler's list and tag search."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(TaskModel, session)

    async def get_scheduled_tasks(self, enabled_only: bool = True) -> list[TaskModel]:
        """Return live scheduled tasks (only those with the schedule enabled, by default), oldest first."""
        # Bare boolean columns, the form the partial index's predicate has.
        statement = self._select().where(col(TaskModel.is_scheduled))
        if enabled_only:
            statement = statement.where(col(TaskModel.schedule_enabled))
        return await self._all(statement.order_by(col(TaskModel.created_at), self._id))

    async def get_by_tags(
        self,
        tags: Sequence[str],
        user_id: UUID | None = None,
        skip: int = 0,
        limit: int = DEFAULT_LIMIT,
    ) -> list[TaskModel]:
        """Return live tasks having any of ``tags`` (optionally of one user), newest first."""
        check_page(skip, limit)
        wanted = params.text_list("tags", tags)
        statement = self._select().where(array_overlap(TaskModel.tags, wanted))
        if user_id is not None:
            statement = statement.where(col(TaskModel.user_id) == params.identifier("user_id", user_id))
        statement = statement.order_by(*self._newest_first()).offset(skip).limit(limit)
        return await self._all(statement)
