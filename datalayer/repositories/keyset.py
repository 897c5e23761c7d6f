"""Keyset pagination: sort keys, the "rows after" condition and opaque cursors.

A cursor is URL-safe base64 of JSON: the ordering's signature and the sort values of the
last row, each tagged with its type so it decodes to the same Python value.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeGuard
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.sql import operators

from datalayer.errors import InvalidDataError
from datalayer.guards import is_list, is_mapping
from datalayer.models.base import EntityModel

__all__ = ["SortKey", "after", "decode_cursor", "encode_cursor", "order_terms", "signature", "sort_keys"]


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ORDER BY term of a keyset ordering: the column and its direction."""

    name: str
    column: sa.ColumnElement[Any]
    descending: bool


def sort_keys(model: type[EntityModel], order_by: Sequence[object] | None) -> tuple[SortKey, ...]:
    """Return the keyset sort keys of an ORDER BY, the primary key appended as tie-breaker."""
    columns = sa.inspect(model).columns
    if not order_by:
        return (
            SortKey("created_at", columns["created_at"], True),
            SortKey("id", columns["id"], True),
        )
    keys: list[SortKey] = []
    for term in order_by:
        element: object = getattr(term, "expression", term)
        descending = False
        if _is_unary(element) and element.modifier in (operators.desc_op, operators.asc_op):
            descending = element.modifier is operators.desc_op
            element = element.element
        name = getattr(element, "key", None)
        column = columns.get(name) if isinstance(name, str) else None
        if column is None or getattr(element, "table", None) is not column.table:
            raise InvalidDataError.for_field(
                "order_by", term, f"keyset ordering needs columns of {model.__name__}"
            )
        if column.nullable:
            raise InvalidDataError.for_field("order_by", term, "keyset ordering needs non-nullable columns")
        keys.append(SortKey(column.key, column, descending))
    if keys[-1].name != "id":
        keys.append(SortKey("id", columns["id"], False))
    return tuple(keys)


def after(keys: Sequence[SortKey], values: Sequence[object]) -> ColumnElement[bool]:
    """Return the condition selecting rows that sort after ``values``."""
    binds = [sa.literal(value, key.column.type) for key, value in zip(keys, values, strict=True)]
    if all(k.descending == keys[0].descending for k in keys):
        # One row-value comparison: both backends turn it into an index range scan.
        left = sa.tuple_(*(k.column for k in keys))
        return left < sa.tuple_(*binds) if keys[0].descending else left > sa.tuple_(*binds)
    alternatives: list[ColumnElement[bool]] = []
    for i, key in enumerate(keys):
        beyond = key.column < binds[i] if key.descending else key.column > binds[i]
        equal = [keys[j].column == binds[j] for j in range(i)]
        alternatives.append(sa.and_(*equal, beyond))
    return sa.or_(*alternatives)


def decode_cursor(keys: Sequence[SortKey], cursor: str) -> list[object]:
    """Return the values a cursor of this ordering holds; InvalidDataError if it is not one."""
    try:
        if not _is_text(cursor) or len(cursor) > 4096:  # from a query string: maybe not a str
            raise ValueError("not a cursor")
        padded = cursor + "=" * (-len(cursor) % 4)
        payload: object = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not is_mapping(payload) or payload.get("o") != signature(keys):
            raise ValueError("cursor of another ordering")
        tagged = payload["v"]
        if not is_list(tagged) or len(tagged) != len(keys):
            raise ValueError("wrong number of values")
        values = [_untag(item) for item in tagged]
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeError) as exc:
        raise InvalidDataError.for_field("cursor", cursor, "invalid pagination cursor") from exc
    return values


def order_terms(keys: Sequence[SortKey]) -> list[ColumnElement[Any]]:
    """Return the ORDER BY terms of a keyset ordering."""
    return [key.column.desc() if key.descending else key.column.asc() for key in keys]


def signature(keys: Sequence[SortKey]) -> str:
    """Return a short text naming the ordering, stored in its cursors."""
    return ",".join(f"{k.name}:{'d' if k.descending else 'a'}" for k in keys)


def encode_cursor(keys: Sequence[SortKey], entity: EntityModel) -> str:
    """Return the opaque cursor of the page after ``entity``."""
    payload = {"o": signature(keys), "v": [_tag(getattr(entity, key.name)) for key in keys]}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _is_unary(value: object) -> TypeGuard[sa.UnaryExpression[Any]]:
    return isinstance(value, sa.UnaryExpression)


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _tag(value: object) -> list[object]:
    """Return ``value`` as ``[type tag, JSON value]`` so that it decodes to the same type."""
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, Enum):
        return ["s", str(value.value)]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, UUID):
        return ["u", str(value)]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, Decimal):
        return ["d", str(value)]
    if isinstance(value, float):
        return ["f", repr(value)]
    raise InvalidDataError.for_field("order_by", value, "cannot paginate on a value of this type")


def _untag(item: object) -> object:
    if not is_list(item) or len(item) != 2 or not isinstance(item[0], str):
        raise ValueError("malformed cursor value")
    tag, value = item
    if tag == "b" and isinstance(value, bool):
        return value
    if tag == "i" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if tag == "s":
            return value
        if tag == "u":
            return UUID(value)
        if tag == "t":
            return datetime.fromisoformat(value)
        if tag == "d":
            return Decimal(value)
        if tag == "f":
            return float(value)
    raise ValueError("malformed cursor value")
