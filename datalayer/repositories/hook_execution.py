"""``HookExecutionRepository``: queries of the ``hook_executions`` table."""

from __future__ import annotations

from sqlmodel import col, select

from datalayer.models import HookExecutionModel
from datalayer.repositories import params
from datalayer.repositories.writes import HookExecutionRepositoryBase

__all__ = ["HookExecutionRepository"]


class HookExecutionRepository(HookExecutionRepositoryBase):
    """Hook runs, looked up by the tool use they belong to."""

    model_type = HookExecutionModel

    async def get_by_tool_use_id(self, tool_use_id: str) -> list[HookExecutionModel]:
        """Return every hook execution of a tool use, oldest first."""
        statement = (
            select(HookExecutionModel)
            .where(col(HookExecutionModel.tool_use_id) == params.text("tool_use_id", tool_use_id))
            .order_by(col(HookExecutionModel.created_at), self._id)
        )
        return await self._all(statement)
