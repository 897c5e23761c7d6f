"""The ``hook_executions`` table."""

from typing import Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from datalayer.models.base import MAX_BIGINT, EntityModel
from datalayer.types import JSONDict

__all__ = ["HookExecutionModel"]


class HookExecutionModel(EntityModel, table=True):
    """One run of a hook (pre/post tool use and similar) in a session."""

    __tablename__: ClassVar[Any] = "hook_executions"
    __table_args__ = (
        sa.Index("ix_hook_executions_tool_use", "tool_use_id", "created_at", "id"),
        sa.Index("ix_hook_executions_session_created", "session_id", "created_at", "id"),
        sa.Index("ix_hook_executions_created_at_id", "created_at", "id"),
    )

    session_id: UUID = Field(foreign_key="sessions.id", ondelete="CASCADE")
    tool_use_id: str | None = Field(default=None, max_length=255)
    hook_type: str = Field(max_length=100, min_length=1)
    input_data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict, nullable=False)
    output_data: dict[str, Any] | None = Field(default=None, sa_type=JSONDict)
    continue_execution: bool = Field(default=True)
    duration_ms: int | None = Field(default=None, ge=0, le=MAX_BIGINT, sa_type=sa.BigInteger)
    error_message: str | None = Field(default=None)
