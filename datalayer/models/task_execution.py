"""The ``task_executions`` table."""

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlmodel import Field, Relationship

from datalayer.models.base import MutableModel
from datalayer.models.enums import TaskExecutionStatus
from datalayer.types import JSONDict, enum_type

if TYPE_CHECKING:
    from datalayer.models.task import TaskModel

__all__ = ["TaskExecutionModel"]


class TaskExecutionModel(MutableModel, table=True):
    """One run of a task, optionally tied to the session that ran it."""

    __tablename__: ClassVar[Any] = "task_executions"
    __table_args__ = (
        sa.Index("ix_task_executions_task_stats", "task_id", "status", "duration_seconds"),
        sa.Index("ix_task_executions_created_at_id", "created_at", "id"),
    )

    task_id: UUID = Field(foreign_key="tasks.id", ondelete="CASCADE")
    session_id: UUID | None = Field(default=None, foreign_key="sessions.id", ondelete="SET NULL", index=True)
    status: TaskExecutionStatus = Field(
        default=TaskExecutionStatus.PENDING, sa_type=enum_type(TaskExecutionStatus)
    )
    started_at: datetime | None = Field(default=None)
    completed_at: datetime | None = Field(default=None)
    duration_seconds: float | None = Field(default=None, ge=0, schema_extra={"allow_inf_nan": False})
    error_message: str | None = Field(default=None)
    result_data: dict[str, Any] | None = Field(default=None, sa_type=JSONDict)

    task: Mapped["TaskModel"] = Relationship(
        back_populates="executions", sa_relationship_kwargs={"lazy": "raise"}
    )
