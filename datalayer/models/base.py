"""Base classes shared by every table: ids, timestamps, soft delete, usage counters."""

from datetime import datetime
from decimal import Decimal
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from datalayer.types import MONEY_MAX, Money, utc_now, uuid7

__all__ = [
    "MAX_BIGINT",
    "EntityModel",
    "MutableModel",
    "SoftDeleteModel",
    "UsageCounters",
    "metadata",
    "partial_index",
]

#: Largest value of a 64-bit signed column (token counters, sizes).
MAX_BIGINT = 2**63 - 1

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The condition of the partial indexes that cover only rows that are not soft-deleted.
LIVE_ROWS = "deleted_at IS NULL"

#: The MetaData holding datalayer's tables (kept apart from SQLModel's global one).
metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def partial_index(
    name: str,
    *columns: str | sa.TextClause,
    where: str = LIVE_ROWS,
    sqlite_where: str | None = None,
    unique: bool = False,
) -> sa.Index:
    """Return an index over the rows matching ``where`` (on SQLite ``sqlite_where`` if given).

    The conditions are our own constant SQL, never user input.
    """
    condition = sa.text(where)
    lite = condition if sqlite_where is None else sa.text(sqlite_where)
    return sa.Index(name, *columns, unique=unique, postgresql_where=condition, sqlite_where=lite)


class EntityModel(SQLModel, registry=registry(metadata=metadata)):
    """Columns every table has: a time-ordered UUID key and an aware-UTC creation time.

    Tables name themselves with ``__tablename__: ClassVar[Any] = "..."``: SQLModel types the
    attribute as ``str`` for mypy and as a ``declared_attr`` for pyright; only ``Any`` is a
    valid override for both.
    """

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    created_at: datetime = Field(default_factory=utc_now, nullable=False)


class MutableModel(EntityModel):
    """A table whose rows change: ``updated_at`` is refreshed by every UPDATE."""

    updated_at: datetime = Field(
        default_factory=utc_now, nullable=False, sa_column_kwargs={"onupdate": utc_now}
    )


class SoftDeleteModel(MutableModel):
    """A table whose rows are hidden, not removed, by ``soft_delete``."""

    deleted_at: datetime | None = Field(default=None, nullable=True)

    @property
    def is_deleted(self) -> bool:
        """Return True when the row has been soft-deleted."""
        return self.deleted_at is not None


class UsageCounters(SQLModel):
    """Message, tool-call, cost and token counters of a session (and of its snapshots)."""

    total_messages: int = Field(default=0, ge=0, le=MAX_BIGINT, sa_type=sa.BigInteger, nullable=False)
    total_tool_calls: int = Field(default=0, ge=0, le=MAX_BIGINT, sa_type=sa.BigInteger, nullable=False)
    total_cost_usd: Decimal = Field(
        default=Decimal(0),
        max_digits=20,
        decimal_places=9,
        # The same limit on both backends (SQLite's scaled 64-bit integer); the few amounts
        # within float rounding above it are refused by the Money type when bound.
        ge=-float(MONEY_MAX),
        le=float(MONEY_MAX),
        sa_type=Money,
        nullable=False,
    )
    api_input_tokens: int = Field(default=0, ge=0, le=MAX_BIGINT, sa_type=sa.BigInteger, nullable=False)
    api_output_tokens: int = Field(default=0, ge=0, le=MAX_BIGINT, sa_type=sa.BigInteger, nullable=False)
    api_cache_creation_tokens: int = Field(
        default=0, ge=0, le=MAX_BIGINT, sa_type=sa.BigInteger, nullable=False
    )
    api_cache_read_tokens: int = Field(default=0, ge=0, le=MAX_BIGINT, sa_type=sa.BigInteger, nullable=False)
