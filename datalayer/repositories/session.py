"""``SessionRepository``: queries of the ``sessions`` table."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col

from datalayer.errors import InvalidDataError
from datalayer.models import (
    ACTIVE_SESSION_STATUSES,
    FINISHED_SESSION_STATUSES,
    MAX_BIGINT,
    SessionModel,
    SessionStatus,
)
from datalayer.repositories import params
from datalayer.repositories.base import DEFAULT_LIMIT
from datalayer.repositories.writes import SessionRepositoryBase
from datalayer.types import MONEY_MAX, to_decimal

__all__ = ["SessionRepository"]


class SessionRepository(SessionRepositoryBase):
    """Agent sessions: per-user listings, active-session quotas, archival, usage metrics."""

    model_type = SessionModel

    async def get_by_user(
        self, user_id: UUID, skip: int = 0, limit: int = DEFAULT_LIMIT
    ) -> list[SessionModel]:
        """Return a user's sessions, newest first."""
        return await self._page(
            col(SessionModel.user_id) == params.identifier("user_id", user_id),
            order_by=self._newest_first(),
            skip=skip,
            limit=limit,
        )

    def _active(self, user_id: UUID) -> tuple[sa.ColumnElement[bool], ...]:
        return (
            col(SessionModel.user_id) == params.identifier("user_id", user_id),
            col(SessionModel.status).in_(ACTIVE_SESSION_STATUSES),
        )

    async def get_active_sessions(self, user_id: UUID) -> list[SessionModel]:
        """Return a user's active, waiting and processing sessions, newest first."""
        statement = self._select().where(*self._active(user_id)).order_by(*self._newest_first())
        return await self._all(statement)

    async def count_active_sessions(self, user_id: UUID) -> int:
        """Return how many active, waiting or processing sessions a user has (for quotas)."""
        return await self.count(list(self._active(user_id)))

    async def get_by_status(
        self, status: SessionStatus | str, skip: int = 0, limit: int = DEFAULT_LIMIT
    ) -> list[SessionModel]:
        """Return sessions in one status, newest first."""
        wanted = params.choice("status", SessionStatus, status)
        return await self._page(
            col(SessionModel.status) == wanted, order_by=self._newest_first(), skip=skip, limit=limit
        )

    async def get_completed_before(self, cutoff_date: datetime, limit: int = 1000) -> list[SessionModel]:
        """Return sessions finished (completed, failed, terminated) before the cutoff, oldest first."""
        cutoff = params.aware_datetime("cutoff_date", cutoff_date)
        return await self._page(
            col(SessionModel.status).in_(FINISHED_SESSION_STATUSES),
            col(SessionModel.completed_at) < cutoff,
            order_by=[col(SessionModel.completed_at), self._id],
            limit=limit,
        )

    async def update_metrics(
        self,
        session_id: UUID,
        total_messages: int | None = None,
        total_tool_calls: int | None = None,
        total_cost_usd: Decimal | float | None = None,
        api_input_tokens: int | None = None,
        api_output_tokens: int | None = None,
        api_cache_creation_tokens: int | None = None,
        api_cache_read_tokens: int | None = None,
        *,
        expected_version: int | None = None,
    ) -> bool:
        """Set the given counters to absolute values; return False if the session is missing or soft-deleted.

        With ``expected_version`` the write happens only if the session is still at the
        version the caller read (``StaleDataError`` otherwise). Concurrent workers that
        add to the counters should use :meth:`add_usage` instead.
        """
        given: dict[str, object] = {
            "total_messages": total_messages,
            "total_tool_calls": total_tool_calls,
            "total_cost_usd": total_cost_usd,
            "api_input_tokens": api_input_tokens,
            "api_output_tokens": api_output_tokens,
            "api_cache_creation_tokens": api_cache_creation_tokens,
            "api_cache_read_tokens": api_cache_read_tokens,
        }
        changes = self._validator.changes({k: v for k, v in given.items() if v is not None})
        key = params.identifier("session_id", session_id)
        updated = await self._update_returning(key, changes, expected_version=expected_version)
        return updated is not None

    async def add_usage(
        self,
        session_id: UUID,
        total_messages: int = 0,
        total_tool_calls: int = 0,
        total_cost_usd: Decimal | float = 0,
        api_input_tokens: int = 0,
        api_output_tokens: int = 0,
        api_cache_creation_tokens: int = 0,
        api_cache_read_tokens: int = 0,
    ) -> bool:
        """Add the given amounts to the counters atomically in SQL; return False if the session is missing.

        Safe under concurrent workers: each call is one ``UPDATE ... SET x = x + :delta``.
        """
        deltas: dict[str, object] = {  # checked below: callers may pass anything
            "total_messages": total_messages,
            "total_tool_calls": total_tool_calls,
            "api_input_tokens": api_input_tokens,
            "api_output_tokens": api_output_tokens,
            "api_cache_creation_tokens": api_cache_creation_tokens,
            "api_cache_read_tokens": api_cache_read_tokens,
        }
        values: dict[str, Any] = {}
        # Each sum must stay in range: SQLite would silently turn an overflowing sum into a
        # REAL, PostgreSQL raises; guarded in the UPDATE, both refuse it naming the field.
        limits: dict[str, tuple[int | Decimal, int | Decimal, int | Decimal]] = {}
        for name, delta in deltas.items():
            if not isinstance(delta, int) or isinstance(delta, bool) or abs(delta) > MAX_BIGINT:
                raise InvalidDataError.for_field(name, delta, "expected a 64-bit integer")
            if delta:
                values[name] = getattr(SessionModel, name) + delta
                limits[name] = (delta, -MAX_BIGINT - 1, MAX_BIGINT)
        try:
            cost = to_decimal(total_cost_usd)
        except ValueError as exc:
            raise InvalidDataError.for_field("total_cost_usd", total_cost_usd, str(exc)) from exc
        self._validator.changes({"total_cost_usd": abs(cost)})  # precision and range
        if cost:
            values["total_cost_usd"] = col(SessionModel.total_cost_usd) + cost
            limits["total_cost_usd"] = (cost, -MONEY_MAX, MONEY_MAX)
        guards = [
            getattr(SessionModel, name) <= high - step
            if step > 0
            else getattr(SessionModel, name) >= low - step
            for name, (step, low, high) in limits.items()
        ]
        key = params.identifier("session_id", session_id)
        updated = await self._update_returning(key, values, *guards)
        if updated is None and limits:
            current = await self.get_by_id(key)
            if current is not None:
                for name, (step, low, high) in limits.items():
                    if not low <= getattr(current, name) + step <= high:
                        raise InvalidDataError.for_field(name, step, f"the sum would leave [{low}, {high}]")
        return updated is not None
