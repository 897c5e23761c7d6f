"""``PermissionDecisionRepository``: queries of the ``permission_decisions`` table."""

from __future__ import annotations

from uuid import UUID

from sqlmodel import col

from datalayer.models import PermissionDecisionModel, PermissionDecisionType
from datalayer.repositories import params
from datalayer.repositories.writes import PermissionDecisionRepositoryBase

__all__ = ["PermissionDecisionRepository"]


class PermissionDecisionRepository(PermissionDecisionRepositoryBase):
    """Allow/deny decisions taken for tool calls."""

    model_type = PermissionDecisionModel

    async def count_by_decision(self, session_id: UUID, decision: PermissionDecisionType | str) -> int:
        """Return how many decisions of this kind (allow or deny) a session has."""
        return await self.count(
            [
                col(PermissionDecisionModel.session_id) == params.identifier("session_id", session_id),
                col(PermissionDecisionModel.decision)
                == params.choice("decision", PermissionDecisionType, decision),
            ]
        )
