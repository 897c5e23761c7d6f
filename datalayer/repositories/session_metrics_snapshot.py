"""``SessionMetricsSnapshotRepository``: queries of the ``session_metrics_snapshots`` table."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlmodel import col, select

from datalayer.models import SessionMetricsSnapshotModel
from datalayer.repositories import params
from datalayer.repositories.writes import SessionMetricsSnapshotRepositoryBase

__all__ = ["SessionMetricsSnapshotRepository"]

_Snapshot = SessionMetricsSnapshotModel


class SessionMetricsSnapshotRepository(SessionMetricsSnapshotRepositoryBase):
    """Point-in-time copies of session usage counters."""

    model_type = SessionMetricsSnapshotModel

    async def get_snapshots_in_range(
        self, session_id: UUID, start_time: datetime, end_time: datetime
    ) -> list[SessionMetricsSnapshotModel]:
        """Return a session's snapshots taken between the two times (both included), oldest first."""
        start = params.aware_datetime("start_time", start_time)
        end = params.aware_datetime("end_time", end_time)
        statement = (
            select(_Snapshot)
            .where(
                col(_Snapshot.session_id) == params.identifier("session_id", session_id),
                col(_Snapshot.created_at) >= start,
                col(_Snapshot.created_at) <= end,
            )
            .order_by(col(_Snapshot.created_at), self._id)
        )
        return await self._all(statement)
