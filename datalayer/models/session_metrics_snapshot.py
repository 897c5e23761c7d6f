"""The ``session_metrics_snapshots`` table."""

from typing import Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from datalayer.models.base import EntityModel, UsageCounters

__all__ = ["SessionMetricsSnapshotModel"]


class SessionMetricsSnapshotModel(EntityModel, UsageCounters, table=True):
    """A point-in-time copy of a session's usage counters."""

    __tablename__: ClassVar[Any] = "session_metrics_snapshots"
    __table_args__ = (
        sa.Index("ix_session_metrics_snapshots_session_created", "session_id", "created_at", "id"),
        sa.Index("ix_session_metrics_snapshots_created_at_id", "created_at", "id"),
    )

    session_id: UUID = Field(foreign_key="sessions.id", ondelete="CASCADE")
