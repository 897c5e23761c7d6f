"""``MCPServerRepository``: queries of the ``mcp_servers`` table."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col

from datalayer.models import MCPServerModel
from datalayer.repositories import params
from datalayer.repositories.writes import MCPServerRepositoryBase

__all__ = ["MCPServerRepository"]


class MCPServerRepository(MCPServerRepositoryBase):
    """MCP server configurations, per user or global."""

    model_type = MCPServerModel

    async def list_by_user(self, user_id: UUID, include_global: bool = True) -> list[MCPServerModel]:
        """Return a user's live servers (and the global ones, by default), by name."""
        owner = col(MCPServerModel.user_id)
        mine = owner == params.identifier("user_id", user_id)
        visible = sa.or_(mine, owner.is_(None)) if include_global else mine
        statement = self._select().where(visible).order_by(col(MCPServerModel.name), self._id)
        return await self._all(statement)
