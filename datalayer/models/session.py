"""The ``sessions`` table."""

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlmodel import Field, Relationship

from datalayer.models.base import SoftDeleteModel, UsageCounters, partial_index
from datalayer.models.enums import SessionMode, SessionStatus
from datalayer.types import JSONDict, enum_type

if TYPE_CHECKING:
    from datalayer.models.message import MessageModel
    from datalayer.models.tool_call import ToolCallModel
    from datalayer.models.user import UserModel

__all__ = ["SessionModel"]


class SessionModel(SoftDeleteModel, UsageCounters, table=True):
    """One agent session of a user, with its running usage counters."""

    __tablename__: ClassVar[Any] = "sessions"
    __table_args__ = (
        partial_index(
            "ix_sessions_user_created_live",
            "user_id",
            "created_at",
            "id",
        ),
        partial_index(
            "ix_sessions_user_status_live",
            "user_id",
            "status",
        ),
        partial_index(
            "ix_sessions_status_created_live",
            "status",
            "created_at",
            "id",
        ),
        partial_index(
            "ix_sessions_completed_at_live",
            "completed_at",
            "id",
        ),
        sa.Index("ix_sessions_created_at_id", "created_at", "id"),
    )

    user_id: UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    name: str | None = Field(default=None, max_length=255)
    mode: SessionMode = Field(default=SessionMode.INTERACTIVE, sa_type=enum_type(SessionMode))
    status: SessionStatus = Field(default=SessionStatus.CREATED, sa_type=enum_type(SessionStatus))
    sdk_options: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict, nullable=False)
    working_directory: str | None = Field(default=None, max_length=4096)
    completed_at: datetime | None = Field(default=None)
    #: Incremented by every repository update; guards optimistic-concurrency writes.
    version: int = Field(default=1, ge=1, sa_type=sa.BigInteger, nullable=False)

    user: Mapped["UserModel"] = Relationship(
        back_populates="sessions", sa_relationship_kwargs={"lazy": "raise"}
    )
    messages: Mapped[list["MessageModel"]] = Relationship(
        back_populates="session",
        sa_relationship_kwargs={
            "lazy": "raise",
            "passive_deletes": True,
            "order_by": "MessageModel.sequence_number",
        },
    )
    tool_calls: Mapped[list["ToolCallModel"]] = Relationship(
        back_populates="session", sa_relationship_kwargs={"lazy": "raise", "passive_deletes": True}
    )
