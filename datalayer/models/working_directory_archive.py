"""The ``working_directory_archives`` table."""

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field

from datalayer.models.base import MAX_BIGINT, MutableModel, partial_index
from datalayer.models.enums import ArchiveStatus
from datalayer.types import enum_type

__all__ = ["WorkingDirectoryArchiveModel"]


class WorkingDirectoryArchiveModel(MutableModel, table=True):
    """An archive of a session's working directory, produced by a background worker."""

    __tablename__: ClassVar[Any] = "working_directory_archives"
    __table_args__ = (
        partial_index(
            "ix_working_directory_archives_pending",
            "created_at",
            "id",
            where="status = 'pending'",
        ),
        sa.Index("ix_working_directory_archives_created_at_id", "created_at", "id"),
    )

    session_id: UUID = Field(foreign_key="sessions.id", ondelete="CASCADE", index=True)
    status: ArchiveStatus = Field(default=ArchiveStatus.PENDING, sa_type=enum_type(ArchiveStatus))
    storage_path: str | None = Field(default=None, max_length=4096)
    size_bytes: int | None = Field(default=None, ge=0, le=MAX_BIGINT, sa_type=sa.BigInteger)
    compression: str = Field(default="gzip", max_length=50, min_length=1)
    error_message: str | None = Field(default=None)
    completed_at: datetime | None = Field(default=None)
