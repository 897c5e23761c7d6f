"""``ReportRepository``: queries of the ``reports`` table."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col

from datalayer.models import ReportModel
from datalayer.repositories import params
from datalayer.repositories.writes import ReportRepositoryBase
from datalayer.sql import json_contains

__all__ = ["ReportRepository"]


class ReportRepository(ReportRepositoryBase):
    """Reports and their content search."""

    model_type = ReportModel

    async def search_content(
        self, search_text: str, user_id: UUID | None = None, limit: int = 50
    ) -> list[ReportModel]:
        """Return live reports whose content has exactly ``search_text`` under "text", newest first.

        JSON containment (``content @> {"text": search_text}``) with the text as a bound
        parameter: quotes, backslashes and SQL are matched literally.
        """
        needle = {"text": params.text("search_text", search_text)}
        criteria: list[sa.ColumnElement[bool]] = [json_contains(ReportModel.content, needle)]
        if user_id is not None:
            criteria.append(col(ReportModel.user_id) == params.identifier("user_id", user_id))
        return await self._page(*criteria, order_by=self._newest_first(), limit=limit)
