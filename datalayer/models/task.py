"""The ``tasks`` table."""

from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlmodel import Field, Relationship

from datalayer.models.base import SoftDeleteModel, partial_index
from datalayer.types import JSONDict, StringList

if TYPE_CHECKING:
    from datalayer.models.task_execution import TaskExecutionModel
    from datalayer.models.user import UserModel

__all__ = ["TaskModel"]


class TaskModel(SoftDeleteModel, table=True):
    """A reusable prompt a user runs by hand or on a cron schedule."""

    __tablename__: ClassVar[Any] = "tasks"
    __table_args__ = (
        partial_index(
            "ix_tasks_user_created_live",
            "user_id",
            "created_at",
            "id",
        ),
        partial_index(
            "ix_tasks_scheduled_live",
            "schedule_enabled",
            "created_at",
            "id",
            where="deleted_at IS NULL AND is_scheduled",
        ),
        sa.Index("ix_tasks_tags", "tags", postgresql_using="gin"),
        sa.Index("ix_tasks_created_at_id", "created_at", "id"),
    )

    user_id: UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    name: str = Field(max_length=255, min_length=1)
    description: str | None = Field(default=None)
    prompt_template: str
    sdk_options: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict, nullable=False)
    tags: list[str] = Field(default_factory=list, sa_type=StringList, nullable=False)
    is_scheduled: bool = Field(default=False)
    schedule_cron: str | None = Field(default=None, max_length=255)
    schedule_enabled: bool = Field(default=False)

    user: Mapped["UserModel"] = Relationship(back_populates="tasks", sa_relationship_kwargs={"lazy": "raise"})
    executions: Mapped[list["TaskExecutionModel"]] = Relationship(
        back_populates="task", sa_relationship_kwargs={"lazy": "raise", "passive_deletes": True}
    )
