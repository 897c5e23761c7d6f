"""Checks for values that validate as Python types but that a database would not store faithfully.

Each problem raises ``InvalidDataError`` naming the field (and, inside JSON, the path to
the offending value, e.g. ``content.items[3].name``), before any SQL is sent:

- NUL characters (PostgreSQL text and jsonb cannot hold them) in strings and JSON keys;
- unpaired surrogates (cannot be encoded as UTF-8);
- NaN and infinite floats (not JSON; SQLite turns NaN into NULL); inside JSON, floats of
  magnitude 1e16 or more (PostgreSQL prints jsonb numbers without exponent, so they would
  come back as ints: pass ``int(x)``, which is exact);
- integers outside signed 64 bits in integer columns; inside JSON, integers are exact on
  both backends up to ``MAX_JSON_INT_DIGITS`` digits;
- JSON nested deeper than ``MAX_JSON_DEPTH``, and JSON object keys that are not strings
  (JSON would silently turn ``{1: x}`` into ``{"1": x}``);
- strings inside a list (tags) longer than ``MAX_LIST_ITEM_LENGTH`` (PostgreSQL cannot index
  an array element that large).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, cast

from datalayer.errors import InvalidDataError
from datalayer.guards import is_list, is_mapping, is_sequence

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "MAX_LIST_ITEM_LENGTH",
    "check_row",
    "check_string",
    "check_value",
]

#: Deepest nesting of JSON objects and arrays accepted.
MAX_JSON_DEPTH = 100
#: Most decimal digits of an integer inside JSON (Python refuses to print longer ones).
MAX_JSON_INT_DIGITS = 1000
#: Longest string accepted as an element of a top-level list field (tags).
MAX_LIST_ITEM_LENGTH = 500

_MIN_INT64 = -(2**63)
_MAX_INT64 = 2**63 - 1
_JSON_INT_LIMIT = 10**MAX_JSON_INT_DIGITS
# From here on repr(float) uses an exponent and every float is integral.
_JSON_FLOAT_LIMIT = 1e16


def check_row(row: Mapping[str, Any]) -> None:
    """Return None if every value of ``row`` can be stored faithfully, else raise InvalidDataError."""
    for name, value in row.items():
        check_value(name, value)


def check_value(field: str, value: object) -> None:
    """Return None if the value of one column can be stored faithfully, else raise InvalidDataError."""
    if _clean(value):
        return
    if isinstance(value, str):
        check_string(field, value)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not _MIN_INT64 <= value <= _MAX_INT64:
            raise InvalidDataError.for_field(field, _shown(value), "integer out of the 64-bit range")
    elif isinstance(value, float):
        _check_float(field, value)
    elif is_list(value):
        for index, item in enumerate(value):
            if isinstance(item, str) and len(item) > MAX_LIST_ITEM_LENGTH:
                raise InvalidDataError.for_field(
                    f"{field}[{index}]", item, f"longer than {MAX_LIST_ITEM_LENGTH} characters"
                )
        _check_json(field, value)
    elif is_mapping(value):
        _check_json(field, value)


def _clean(value: object) -> bool:
    """Return True if ``value`` certainly passes every check (no path strings built: the fast path).

    False means "look closer": ``check_value`` then walks the value again and names the
    problem. Only exact builtin types are trusted; subclasses, other types and edge values
    take the slow path.
    """
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is str:
            # isascii() is O(1) in CPython; non-ASCII text needs the UTF-8 (surrogate) check.
            if not _plain_text(cast(str, item)):
                return False
        elif item is None or kind is bool:
            continue
        elif kind is int:
            limit = _MAX_INT64 if depth == 0 else _JSON_INT_LIMIT
            if not -limit < cast(int, item) < limit:
                return False
        elif kind is float:
            number = cast(float, item)
            if not math.isfinite(number) or (depth > 0 and abs(number) >= _JSON_FLOAT_LIMIT):
                return False
        elif kind is dict:
            if depth >= MAX_JSON_DEPTH:
                return False
            for key, child in cast(dict[object, object], item).items():
                if type(key) is not str or not _plain_text(key):
                    return False
                stack.append((child, depth + 1))
        elif kind is list:
            if depth >= MAX_JSON_DEPTH:
                return False
            for child in cast(list[object], item):
                if depth == 0 and isinstance(child, str) and len(child) > MAX_LIST_ITEM_LENGTH:
                    return False
                stack.append((child, depth + 1))
        else:
            return False
    return True


def _plain_text(text: str) -> bool:
    return text.isascii() and "\x00" not in text


def check_string(field: str, value: str) -> None:
    """Return None if ``value`` has no NUL and encodes as UTF-8, else raise InvalidDataError."""
    if "\x00" in value:
        raise InvalidDataError.for_field(field, value, "NUL characters cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidDataError.for_field(
            field, value, "not valid Unicode (unpaired surrogate); cannot be encoded as UTF-8"
        ) from exc


def _shown(value: int) -> object:
    """Return the int, or a description when printing it would fail (over 4300 digits)."""
    return value if value.bit_length() < 4000 else f"<{value.bit_length()}-bit integer>"


def _check_float(field: str, value: float) -> None:
    if not math.isfinite(value):
        raise InvalidDataError.for_field(field, value, "NaN and infinite numbers cannot be stored")


def _check_json(field: str, document: object) -> None:
    # Iterative walk: a hostile document must not exhaust Python's recursion limit here.
    stack: list[tuple[str, object, int]] = [(field, document, 0)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, str):
            check_string(path, value)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -_JSON_INT_LIMIT < value < _JSON_INT_LIMIT:
                raise InvalidDataError.for_field(
                    path, _shown(value), f"integer with more than {MAX_JSON_INT_DIGITS} digits"
                )
        elif isinstance(value, float):
            _check_float(path, value)
            if abs(value) >= _JSON_FLOAT_LIMIT:
                raise InvalidDataError.for_field(
                    path, value, "float of 1e16 or more would come back as an int; pass int(value)"
                )
        elif is_mapping(value) or is_sequence(value):
            if depth >= MAX_JSON_DEPTH:
                raise InvalidDataError.for_field(path, "...", f"JSON nested deeper than {MAX_JSON_DEPTH}")
            if is_mapping(value):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise InvalidDataError.for_field(path, key, "JSON object keys must be strings")
                    check_string(f"{path} key", key)
                    stack.append((f"{path}.{key}", item, depth + 1))
            else:
                stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value))
        # Other values (UUID, datetime, Decimal, enums) are the column types' business.
