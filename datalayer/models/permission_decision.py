"""The ``permission_decisions`` table."""

from typing import Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from datalayer.models.base import EntityModel
from datalayer.models.enums import PermissionDecisionType
from datalayer.types import JSONDict, enum_type

__all__ = ["PermissionDecisionModel"]


class PermissionDecisionModel(EntityModel, table=True):
    """An allow/deny decision taken for a tool call."""

    __tablename__: ClassVar[Any] = "permission_decisions"
    __table_args__ = (
        sa.Index("ix_permission_decisions_session_decision", "session_id", "decision"),
        sa.Index("ix_permission_decisions_created_at_id", "created_at", "id"),
    )

    session_id: UUID = Field(foreign_key="sessions.id", ondelete="CASCADE")
    tool_call_id: UUID | None = Field(
        default=None, foreign_key="tool_calls.id", ondelete="SET NULL", index=True
    )
    tool_use_id: str | None = Field(default=None, max_length=255)
    tool_name: str = Field(max_length=255, min_length=1)
    decision: PermissionDecisionType = Field(sa_type=enum_type(PermissionDecisionType))
    reason: str | None = Field(default=None)
    input_data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict, nullable=False)
