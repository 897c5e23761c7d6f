"""``WorkingDirectoryArchiveRepository``: queries of the ``working_directory_archives`` table."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col

from datalayer.errors import translate_errors
from datalayer.models import ArchiveStatus, WorkingDirectoryArchiveModel
from datalayer.repositories import params
from datalayer.repositories.base import check_page
from datalayer.repositories.writes import WorkingDirectoryArchiveRepositoryBase

__all__ = ["WorkingDirectoryArchiveRepository"]

_Archive = WorkingDirectoryArchiveModel


class WorkingDirectoryArchiveRepository(WorkingDirectoryArchiveRepositoryBase):
    """Archives of session working directories and the queue of pending ones."""

    model_type = WorkingDirectoryArchiveModel

    def _oldest_pending(self, limit: int) -> sa.Select[UUID]:
        return (
            sa.select(col(_Archive.id))
            .where(col(_Archive.status) == params.fixed(ArchiveStatus.PENDING))
            .order_by(col(_Archive.created_at), self._id)
            .limit(limit)
        )

    async def get_pending_archives(self, limit: int = 100) -> list[WorkingDirectoryArchiveModel]:
        """Return pending archives, oldest first (a look at the queue; workers use claim_pending)."""
        return await self._page(
            col(_Archive.status) == params.fixed(ArchiveStatus.PENDING),
            order_by=[col(_Archive.created_at), self._id],
            limit=limit,
        )

    async def claim_pending(self, limit: int = 1) -> list[WorkingDirectoryArchiveModel]:
        """Mark up to ``limit`` of the oldest pending archives in_progress and return them, oldest first.

        Each archive is handed to exactly one of several concurrent workers: on PostgreSQL
        the candidates are locked with ``FOR UPDATE SKIP LOCKED`` (workers skip each
        other's rows instead of waiting); SQLite write transactions are exclusive.
        """
        check_page(0, limit)
        # A CTE, evaluated once: as an IN (subquery) PostgreSQL may re-run it per row and
        # claim more than ``limit`` rows.
        candidates = (
            self._oldest_pending(limit)
            .with_for_update(skip_locked=True)
            .cte("candidates")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        statement = (
            sa.update(_Archive)
            .where(col(_Archive.id).in_(sa.select(candidates.c.id)))
            .values(status=ArchiveStatus.IN_PROGRESS)
            .returning(_Archive)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
        with translate_errors():
            result = await self.session.exec(statement)
            claimed: list[WorkingDirectoryArchiveModel] = list(result.scalars().all())
        return sorted(claimed, key=lambda archive: (archive.created_at, archive.id))
