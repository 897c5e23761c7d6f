"""``TaskExecutionRepository``: queries of the ``task_executions`` table."""

from __future__ import annotations

from typing import TypedDict
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col

from datalayer.errors import translate_errors
from datalayer.models import TaskExecutionModel, TaskExecutionStatus
from datalayer.repositories import params
from datalayer.repositories.writes import TaskExecutionRepositoryBase

__all__ = ["ExecutionStats", "TaskExecutionRepository"]


class ExecutionStats(TypedDict):
    """Aggregates of a task's executions (``get_execution_stats``)."""

    total: int
    completed: int
    failed: int
    cancelled: int
    avg_duration_seconds: float | None


class TaskExecutionRepository(TaskExecutionRepositoryBase):
    """Runs of tasks and their statistics."""

    model_type = TaskExecutionModel

    async def get_execution_stats(self, task_id: UUID) -> ExecutionStats:
        """Return counts by outcome and the average duration of a task's executions.

        ``avg_duration_seconds`` is None when no execution has a duration.
        """
        status = col(TaskExecutionModel.status)
        # More columns than sqlmodel.select is typed for: a Core select on the unit's connection.
        statement = sa.select(
            sa.func.count(),
            sa.func.count().filter(status == TaskExecutionStatus.COMPLETED),
            sa.func.count().filter(status == TaskExecutionStatus.FAILED),
            sa.func.count().filter(status == TaskExecutionStatus.CANCELLED),
            sa.func.avg(col(TaskExecutionModel.duration_seconds)),
        ).where(col(TaskExecutionModel.task_id) == params.identifier("task_id", task_id))
        with translate_errors():
            connection = await self.session.connection()
            total, completed, failed, cancelled, average = (await connection.execute(statement)).one()
        return ExecutionStats(
            total=int(total),
            completed=int(completed),
            failed=int(failed),
            cancelled=int(cancelled),
            avg_duration_seconds=None if average is None else float(average),
        )
