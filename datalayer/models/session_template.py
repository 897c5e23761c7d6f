"""The ``session_templates`` table."""

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from datalayer.models.base import MAX_BIGINT, SoftDeleteModel, partial_index
from datalayer.types import JSONDict, StringList

__all__ = ["SessionTemplateModel"]


class SessionTemplateModel(SoftDeleteModel, table=True):
    """A reusable session configuration, private, public or shared with the organization."""

    __tablename__: ClassVar[Any] = "session_templates"
    __table_args__ = (
        sa.Index("ix_session_templates_tags", "tags", postgresql_using="gin"),
        # search_by_tags orders by (usage_count, created_at, id) DESC: each of its branches
        # walks one of these backwards and stops after a page (flat in table size).
        partial_index("ix_session_templates_usage_created_live", "usage_count", "created_at", "id"),
        partial_index("ix_session_templates_user_usage_live", "user_id", "usage_count", "created_at", "id"),
        # Written as each dialect renders ``is_public OR is_organization_shared`` in a query: a
        # partial index is only used when its predicate is found in the query's WHERE.
        partial_index(
            "ix_session_templates_shared_usage_live",
            "usage_count",
            "created_at",
            "id",
            where="(is_public OR is_organization_shared) AND deleted_at IS NULL",
            sqlite_where="(is_public = 1 OR is_organization_shared = 1) AND deleted_at IS NULL",
        ),
        partial_index("ix_session_templates_user_created_live", "user_id", "created_at", "id"),
        sa.Index("ix_session_templates_created_at_id", "created_at", "id"),
    )

    user_id: UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    name: str = Field(max_length=255, min_length=1)
    description: str | None = Field(default=None)
    system_prompt: str | None = Field(default=None)
    sdk_options: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict, nullable=False)
    tags: list[str] = Field(default_factory=list, sa_type=StringList, nullable=False)
    is_public: bool = Field(default=False)
    is_organization_shared: bool = Field(default=False)
    usage_count: int = Field(default=0, ge=0, le=MAX_BIGINT, sa_type=sa.BigInteger, nullable=False)
    last_used_at: datetime | None = Field(default=None)
