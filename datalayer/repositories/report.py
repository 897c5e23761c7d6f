"""``ReportRepository``: queries of the ``reports`` table."""

from __future__ import annotations

from uuid import UUID

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer.models import ReportModel
from datalayer.repositories import params
from datalayer.repositories.base import SoftDeleteRepository, check_page
from datalayer.sql import json_contains

__all__ = ["ReportRepository"]


class ReportRepository(SoftDeleteRepository[ReportModel]):
    """Reports and their content search."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(ReportModel, session)

    async def search_content(
        self, search_text: str, user_id: UUID | None = None, limit: int = 50
    ) -> list[ReportModel]:
        """Return live reports whose content has exactly ``search_text`` under "text", newest first.

        JSON containment (``content @> {"text": search_text}``) with the text as a bound
        parameter: quotes, backslashes and SQL are matched literally.
        """
        check_page(0, limit)
        needle = {"text": params.text("search_text", search_text)}
        statement = self._select().where(json_contains(ReportModel.content, needle))
        if user_id is not None:
            statement = statement.where(col(ReportModel.user_id) == params.identifier("user_id", user_id))
        return await self._all(statement.order_by(*self._newest_first()).limit(limit))
