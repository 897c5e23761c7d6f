"""``SessionTemplateRepository``: queries of the ``session_templates`` table."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col

from datalayer.models import SessionTemplateModel
from datalayer.repositories import params
from datalayer.repositories.base import DEFAULT_LIMIT
from datalayer.repositories.writes import SessionTemplateRepositoryBase
from datalayer.sql import array_overlap
from datalayer.types import utc_now

__all__ = ["SessionTemplateRepository"]


class SessionTemplateRepository(SessionTemplateRepositoryBase):
    """Session templates: tag search with visibility rules, usage counting."""

    model_type = SessionTemplateModel

    async def search_by_tags(
        self,
        tags: Sequence[str],
        user_id: UUID | None = None,
        skip: int = 0,
        limit: int = DEFAULT_LIMIT,
    ) -> list[SessionTemplateModel]:
        """Return live templates having any of ``tags``, most used first.

        With ``user_id``, only templates that user may see: their own, public ones and
        organization-shared ones. Without it, every template (as in the reference).
        """
        criteria: list[sa.ColumnElement[bool]] = [
            array_overlap(SessionTemplateModel.tags, params.text_list("tags", tags))
        ]
        if user_id is not None:
            owner = params.identifier("user_id", user_id)
            criteria.append(
                sa.or_(
                    col(SessionTemplateModel.user_id) == owner,
                    col(SessionTemplateModel.is_public).is_(True),
                    col(SessionTemplateModel.is_organization_shared).is_(True),
                )
            )
        order = [col(SessionTemplateModel.usage_count).desc(), *self._newest_first()]
        return await self._page(*criteria, order_by=order, skip=skip, limit=limit)

    async def update_usage_stats(self, template_id: UUID) -> bool:
        """Count one use of the template atomically (no commit); False if it is missing or soft-deleted.

        One ``UPDATE ... SET usage_count = usage_count + 1, last_used_at = now``, so
        concurrent units of work never lose an increment.
        """
        key = params.identifier("template_id", template_id)
        values = {"usage_count": col(SessionTemplateModel.usage_count) + 1, "last_used_at": utc_now()}
        return await self._update_returning(key, values) is not None
