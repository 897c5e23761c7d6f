"""``HookExecutionRepository``: queries of the ``hook_executions`` table."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer.models import HookExecutionModel
from datalayer.repositories import params
from datalayer.repositories.base import Repository

__all__ = ["HookExecutionRepository"]


class HookExecutionRepository(Repository[HookExecutionModel]):
    """Hook runs, looked up by the tool use they belong to."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(HookExecutionModel, session)

    async def get_by_tool_use_id(self, tool_use_id: str) -> list[HookExecutionModel]:
        """Return every hook execution of a tool use, oldest first."""
        statement = (
            select(HookExecutionModel)
            .where(col(HookExecutionModel.tool_use_id) == params.text("tool_use_id", tool_use_id))
            .order_by(col(HookExecutionModel.created_at), self._id)
        )
        return await self._all(statement)
