"""Checks for the arguments of specialized queries (the values filters are built from).

Each returns the value in the type the query needs, or raises ``InvalidDataError``
naming the parameter, so a bad argument never reaches the driver.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TypeVar
from uuid import UUID

import sqlalchemy as sa

from datalayer.errors import InvalidDataError
from datalayer.guards import is_sequence
from datalayer.sanitize import check_string
from datalayer.validation import as_uuid

__all__ = [
    "aware_datetime",
    "choice",
    "fixed",
    "identifier",
    "optional_identifier",
    "text",
    "text_list",
]

EnumT = TypeVar("EnumT", bound=StrEnum)


def text(name: str, value: object) -> str:
    """Return ``value`` if it is a string both databases can store and compare."""
    if not isinstance(value, str):
        raise InvalidDataError.for_field(name, value, "expected a string")
    check_string(name, value)
    return value


def text_list(name: str, values: object) -> list[str]:
    """Return ``values`` as a list of checked strings (a bare string is refused)."""
    if not is_sequence(values):
        raise InvalidDataError.for_field(name, values, "expected a list of strings")
    return [text(name, value) for value in values]


def choice(name: str, enum: type[EnumT], value: object) -> EnumT:
    """Return ``value`` as a member of ``enum`` (its string value is accepted)."""
    if isinstance(value, enum):
        return value
    if not isinstance(value, str):
        raise InvalidDataError.for_field(name, value, "expected a string")
    try:
        return enum(value)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidDataError.for_field(name, value, f"expected one of: {allowed}") from exc


def aware_datetime(name: str, value: object) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime (naive ones are ambiguous)."""
    if not isinstance(value, datetime):
        raise InvalidDataError.for_field(name, value, "expected a datetime")
    if value.utcoffset() is None:
        raise InvalidDataError.for_field(name, value, "naive datetime; pass an aware one")
    return value


def fixed(value: StrEnum) -> sa.BindParameter[str]:
    """Return one of our own constants, rendered inline into the SQL (never user input).

    Partial indexes (``WHERE status = 'pending'``) are only usable when the planner sees
    the value: a bound parameter hides it from SQLite and from PostgreSQL generic plans.
    """
    return sa.bindparam(None, value.value, type_=sa.String(), literal_execute=True)


def identifier(name: str, value: object) -> UUID:
    """Return ``value`` as a UUID (or its string form)."""
    return as_uuid(value, name)


def optional_identifier(name: str, value: object) -> UUID | None:
    """Return ``value`` as a UUID, or None when it is None."""
    return None if value is None else as_uuid(value, name)
