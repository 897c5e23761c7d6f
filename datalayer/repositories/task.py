"""``TaskRepository``: queries of the ``tasks`` table."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col

from datalayer.models import TaskModel
from datalayer.repositories import params
from datalayer.repositories.base import DEFAULT_LIMIT
from datalayer.repositories.writes import TaskRepositoryBase
from datalayer.sql import array_overlap

__all__ = ["TaskRepository"]


class TaskRepository(TaskRepositoryBase):
    """Tasks: the scheduler's list and tag search."""

    model_type = TaskModel

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
        criteria: list[sa.ColumnElement[bool]] = [
            array_overlap(TaskModel.tags, params.text_list("tags", tags))
        ]
        if user_id is not None:
            criteria.append(col(TaskModel.user_id) == params.identifier("user_id", user_id))
        return await self._page(*criteria, order_by=self._newest_first(), skip=skip, limit=limit)
