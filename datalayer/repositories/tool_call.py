"""``ToolCallRepository``: queries of the ``tool_calls`` table."""

from __future__ import annotations

from typing import Any, TypedDict
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select

from datalayer.errors import translate_errors
from datalayer.models import ToolCallModel, ToolCallStatus
from datalayer.repositories import params
from datalayer.repositories.writes import ToolCallRepositoryBase
from datalayer.types import utc_now

__all__ = ["ToolCallRepository", "ToolStatistics"]


class ToolStatistics(TypedDict):
    """Aggregates of one tool's calls (a row of ``get_statistics_by_tool``)."""

    tool_name: str
    total_calls: int
    success_count: int
    error_count: int
    avg_duration_ms: float | None


class ToolCallRepository(ToolCallRepositoryBase):
    """Tool calls: lookup by SDK id, the permission queue, status transitions, statistics."""

    model_type = ToolCallModel

    async def get_by_tool_use_id(self, tool_use_id: str) -> ToolCallModel | None:
        """Return the tool call with this SDK ``tool_use_id``, or None."""
        statement = select(ToolCallModel).where(
            col(ToolCallModel.tool_use_id) == params.text("tool_use_id", tool_use_id)
        )
        return await self._first(statement)

    async def get_pending_for_permission(self, session_id: UUID | None = None) -> list[ToolCallModel]:
        """Return pending calls with no permission decision yet, oldest first (optionally of one session)."""
        criteria = [
            col(ToolCallModel.status) == params.fixed(ToolCallStatus.PENDING),
            col(ToolCallModel.permission_decision).is_(None),
        ]
        if session_id is not None:
            criteria.append(col(ToolCallModel.session_id) == params.identifier("session_id", session_id))
        statement = select(ToolCallModel).where(*criteria).order_by(col(ToolCallModel.created_at), self._id)
        return await self._all(statement)

    async def update_status(
        self, tool_call_id: UUID, status: ToolCallStatus | str, error_message: str | None = None
    ) -> bool:
        """Move a call to ``status``, stamping the times; return False if the call is missing.

        As in the reference: an error message also sets ``is_error``; ``running`` (without
        an error) sets ``started_at``; ``success`` and ``error`` set ``completed_at``.
        """
        new_status = params.choice("status", ToolCallStatus, status)
        now = utc_now()
        values: dict[str, Any] = {"status": new_status}
        if error_message:
            values["error_message"] = params.text("error_message", error_message)
            values["is_error"] = True
        if new_status is ToolCallStatus.RUNNING and not error_message:
            values["started_at"] = now
        elif new_status in (ToolCallStatus.SUCCESS, ToolCallStatus.ERROR):
            values["completed_at"] = now
        key = params.identifier("tool_call_id", tool_call_id)
        return await self._update_returning(key, values) is not None

    async def get_statistics_by_tool(self, session_id: UUID | None = None) -> list[ToolStatistics]:
        """Return per-tool call counts and average duration, by tool name (optionally of one session).

        ``avg_duration_ms`` is None when no call of that tool has a duration (0.0 stays 0.0).
        """
        status = col(ToolCallModel.status)
        # More columns than sqlmodel.select is typed for: a Core select on the unit's connection.
        statement = sa.select(
            col(ToolCallModel.tool_name),
            sa.func.count().label("total_calls"),
            sa.func.count().filter(status == ToolCallStatus.SUCCESS).label("success_count"),
            sa.func.count().filter(status == ToolCallStatus.ERROR).label("error_count"),
            sa.func.avg(col(ToolCallModel.duration_ms)).label("avg_duration_ms"),
        )
        if session_id is not None:
            statement = statement.where(
                col(ToolCallModel.session_id) == params.identifier("session_id", session_id)
            )
        statement = statement.group_by(col(ToolCallModel.tool_name)).order_by(col(ToolCallModel.tool_name))
        with translate_errors():
            connection = await self.session.connection()
            rows = (await connection.execute(statement)).all()
        return [
            ToolStatistics(
                tool_name=name,
                total_calls=int(total),
                success_count=int(success),
                error_count=int(error),
                avg_duration_ms=None if average is None else float(average),
            )
            for name, total, success, error, average in rows
        ]
