"""The ``tasks`` table."""

from typing import TYPE_CHECKING, Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field, Relationship

from datalayer.models.base import SoftDeleteModel
from datalayer.types import JSONDict, StringList

if TYPE_CHECKING:
    from datalayer.models.task_execution import TaskExecutionModel
    from datalayer.models.user import UserModel

__all__ = ["TaskModel"]

_LIVE = sa.text("deleted_at IS NULL")
_SCHEDULED_LIVE = sa.text("deleted_at IS NULL AND is_scheduled")


class TaskModel(SoftDeleteModel, table=True):
    """A reusable prompt a user runs by hand or on a cron schedule."""

    __tablename__ = "tasks"
    __table_args__ = (
        sa.Index(
            "ix_tasks_user_created_live",
            "user_id",
            "created_at",
            "id",
            postgresql_where=_LIVE,
            sqlite_where=_LIVE,
        ),
        sa.Index(
            "ix_tasks_scheduled_live",
            "schedule_enabled",
            "created_at",
            "id",
            postgresql_where=_SCHEDULED_LIVE,
            sqlite_where=_SCHEDULED_LIVE,
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

    user: "UserModel" = Relationship(back_populates="tasks", sa_relationship_kwargs={"lazy": "raise"})
    executions: list["TaskExecutionModel"] = Relationship(
        back_populates="task", sa_relationship_kwargs={"lazy": "raise", "passive_deletes": True}
    )
