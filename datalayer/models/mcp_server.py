"""The ``mcp_servers`` table."""

from typing import Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from datalayer.models.base import SoftDeleteModel, partial_index
from datalayer.models.enums import MCPServerType
from datalayer.types import JSONDict, enum_type

__all__ = ["MCPServerModel"]


class MCPServerModel(SoftDeleteModel, table=True):
    """An MCP server configuration, owned by a user or global (``user_id`` NULL)."""

    __tablename__: ClassVar[Any] = "mcp_servers"
    __table_args__ = (
        partial_index(
            "ix_mcp_servers_user_created_live",
            "user_id",
            "created_at",
            "id",
        ),
        sa.Index("ix_mcp_servers_created_at_id", "created_at", "id"),
    )

    user_id: UUID | None = Field(default=None, foreign_key="users.id", ondelete="CASCADE")
    name: str = Field(max_length=255, min_length=1)
    server_type: MCPServerType = Field(sa_type=enum_type(MCPServerType))
    config: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict, nullable=False)
    is_enabled: bool = Field(default=True)
