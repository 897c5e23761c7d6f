"""Column types and value helpers that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from datalayer.tracking import TrackedDict, TrackedList

__all__ = [
    "MONEY_MAX",
    "MONEY_SCALE",
    "JSONDict",
    "Money",
    "StringList",
    "enum_type",
    "to_decimal",
    "utc_now",
    "uuid7",
]

#: Digits kept after the decimal point for money columns (nano-dollars).
MONEY_SCALE = 9
_MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
#: Largest money amount (either sign) on every backend: what SQLite's scaled 64-bit integer holds.
#: PostgreSQL's NUMERIC(20,9) could hold more; the same limit on both keeps code portable.
MONEY_MAX = Decimal(2**63 - 1).scaleb(-MONEY_SCALE)


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def uuid7() -> UUID:
    """Return a new time-ordered UUID (version 7, RFC 9562)."""
    # Python 3.11 has no uuid.uuid7; the layout is 48 bits of Unix milliseconds,
    # the version nibble, 12 random bits, the variant, then 62 random bits.
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 68 & 0xFFF
    rand_b = rand & 0x3FFF_FFFF_FFFF_FFFF
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return UUID(int=value)


def to_decimal(value: Decimal | float | int | str) -> Decimal:
    """Return ``value`` as a Decimal; floats go through their shortest repr (0.1 -> 0.1)."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        try:
            result = Decimal(value)
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


class Money(TypeDecorator[Decimal]):
    """Exact decimal money: NUMERIC on PostgreSQL, scaled BIGINT on SQLite.

    SQLite has no exact NUMERIC (it stores REAL), so amounts are kept as an integer
    count of 10**-MONEY_SCALE units there; sums and ``col + :delta`` stay exact.
    Amounts beyond ``MONEY_MAX`` are refused on both backends.
    """

    impl = sa.Numeric(20, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(20, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = to_decimal(value)
        if amount.quantize(_MONEY_QUANTUM) != amount:
            raise ValueError(f"{amount} has more than {MONEY_SCALE} decimal places")
        if abs(amount) > MONEY_MAX:
            raise ValueError(f"{amount} is beyond the money limit of +/-{MONEY_MAX}")
        if dialect.name == "sqlite":
            return int(amount.scaleb(MONEY_SCALE))
        return amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-MONEY_SCALE)
        return to_decimal(value)

    def coerce_compared_value(self, op: Any, value: Any) -> TypeEngine[Any]:
        return self


class JSONDict(TypeDecorator[dict[str, Any]]):
    """A JSON object: JSONB on PostgreSQL, JSON text on SQLite; None is SQL NULL."""

    impl = sa.JSON
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(none_as_null=True)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(sa.JSON(none_as_null=True))

    def __repr__(self) -> str:
        return "JSONDict()"


class StringList(TypeDecorator[list[str]]):
    """A list of strings: ARRAY(VARCHAR) on PostgreSQL, a JSON array on SQLite."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(sa.String()))
        return dialect.type_descriptor(sa.JSON())

    def __repr__(self) -> str:
        return "StringList()"


# In-place changes (``entity.tags.append(x)``, ``entity.content["k"] = v``) mark the
# attribute dirty, so a flush persists them. Nested changes still need reassignment.
TrackedDict.associate_with(JSONDict)
TrackedList.associate_with(StringList)


def _enum_values(enum_cls: type[StrEnum]) -> list[str]:
    return [member.value for member in enum_cls]


def enum_type(enum_cls: type[StrEnum]) -> sa.Enum:
    """Return a VARCHAR + CHECK column type storing the enum's values (not names)."""
    return sa.Enum(
        enum_cls,
        name=_snake_case(enum_cls.__name__),
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        values_callable=_enum_values,
        length=max(len(member.value) for member in enum_cls),
    )


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
