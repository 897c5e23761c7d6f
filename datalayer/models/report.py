"""The ``reports`` table."""

from typing import Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from datalayer.models.base import SoftDeleteModel, partial_index
from datalayer.types import JSONDict, StringList

__all__ = ["ReportModel"]


class ReportModel(SoftDeleteModel, table=True):
    """A report produced for a user, optionally from a session."""

    __tablename__: ClassVar[Any] = "reports"
    __table_args__ = (
        partial_index(
            "ix_reports_user_created_live",
            "user_id",
            "created_at",
            "id",
        ),
        # Serves JSON containment (search_content) on PostgreSQL.
        sa.Index(
            "ix_reports_content",
            "content",
            postgresql_using="gin",
            postgresql_ops={"content": "jsonb_path_ops"},
        ),
        sa.Index("ix_reports_created_at_id", "created_at", "id"),
    )

    user_id: UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    session_id: UUID | None = Field(default=None, foreign_key="sessions.id", ondelete="SET NULL", index=True)
    title: str = Field(max_length=500, min_length=1)
    report_type: str = Field(max_length=100, min_length=1)
    content: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict, nullable=False)
    tags: list[str] = Field(default_factory=list, sa_type=StringList, nullable=False)
