"""The ``tool_calls`` table."""

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlmodel import Field, Relationship

from datalayer.models.base import MAX_BIGINT, MutableModel, partial_index
from datalayer.models.enums import PermissionDecisionType, ToolCallStatus
from datalayer.types import JSONDict, enum_type

if TYPE_CHECKING:
    from datalayer.models.session import SessionModel

__all__ = ["ToolCallModel"]


class ToolCallModel(MutableModel, table=True):
    """One tool invocation requested by the agent in a session."""

    __tablename__: ClassVar[Any] = "tool_calls"
    __table_args__ = (
        partial_index(
            "ix_tool_calls_awaiting_permission",
            "created_at",
            "id",
            where="status = 'pending' AND permission_decision IS NULL",
        ),
        partial_index(
            "ix_tool_calls_session_awaiting_permission",
            "session_id",
            "created_at",
            "id",
            where="status = 'pending' AND permission_decision IS NULL",
        ),
        # Covers get_statistics_by_tool, with and without a session filter.
        sa.Index("ix_tool_calls_session_tool_stats", "session_id", "tool_name", "status", "duration_ms"),
        sa.Index("ix_tool_calls_tool_stats", "tool_name", "status", "duration_ms"),
        sa.Index("ix_tool_calls_created_at_id", "created_at", "id"),
    )

    session_id: UUID = Field(foreign_key="sessions.id", ondelete="CASCADE")
    message_id: UUID | None = Field(default=None, foreign_key="messages.id", ondelete="SET NULL", index=True)
    tool_use_id: str = Field(max_length=255, unique=True)
    tool_name: str = Field(max_length=255)
    tool_input: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict, nullable=False)
    tool_output: dict[str, Any] | None = Field(default=None, sa_type=JSONDict)
    status: ToolCallStatus = Field(default=ToolCallStatus.PENDING, sa_type=enum_type(ToolCallStatus))
    permission_decision: PermissionDecisionType | None = Field(
        default=None, sa_type=enum_type(PermissionDecisionType)
    )
    is_error: bool = Field(default=False)
    error_message: str | None = Field(default=None)
    duration_ms: int | None = Field(default=None, ge=0, le=MAX_BIGINT, sa_type=sa.BigInteger)
    started_at: datetime | None = Field(default=None)
    completed_at: datetime | None = Field(default=None)

    session: Mapped["SessionModel"] = Relationship(
        back_populates="tool_calls", sa_relationship_kwargs={"lazy": "raise"}
    )
