"""Portable SQL constructs: JSON containment and array overlap on PostgreSQL and SQLite.

Both take the searched value as ONE bound parameter, so the SQL text never depends on
user input (and the compiled statement is cached): PostgreSQL uses its indexable
operators ``@>`` (jsonb) and ``&&`` (arrays); SQLite walks the stored JSON with
``json_each``.

Use them in any query::

    select(ReportModel).where(json_contains(ReportModel.content, {"text": "hello"}))
    select(TaskModel).where(array_overlap(TaskModel.tags, ["python", "ops"]))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from datalayer.errors import InvalidDataError
from datalayer.guards import is_mapping, is_sequence
from datalayer.types import JSONDict, StringList

__all__ = ["JSONScalar", "array_overlap", "json_contains"]

#: A JSON value that is not an object or array.
JSONScalar = str | int | float | bool | None
_JSON_EACH_COLUMNS = ("key", "value", "type", "atom")


def _check_scalar(field: str, value: object) -> None:
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise InvalidDataError.for_field(field, value, "expected a JSON scalar (str, number, bool or None)")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidDataError.for_field(field, value, "NaN and infinity are not JSON")


def _check_needle(needle: object) -> dict[str, Any]:
    if not is_mapping(needle):
        raise InvalidDataError.for_field("needle", needle, "expected a JSON object (dict)")
    checked: dict[str, Any] = {}
    for key, value in needle.items():
        if not isinstance(key, str):
            raise InvalidDataError.for_field("needle", key, "JSON object keys must be strings")
        if is_sequence(value):
            for item in value:
                _check_scalar(key, item)
            checked[key] = list(value)
        else:
            _check_scalar(key, value)
            checked[key] = value
    return checked


class json_contains(FunctionElement[bool]):  # lower case, like sqlalchemy.func
    """``column @> needle``: the JSON object column contains every key/value of ``needle``.

    ``needle`` is an object whose values are JSON scalars or arrays of scalars; arrays
    match when every element is in the stored array (PostgreSQL's jsonb semantics:
    ``1`` and ``1.0`` are equal, ``1``, ``true`` and ``"1"`` are not).
    """

    type = sa.Boolean()
    inherit_cache = True
    name = "json_contains"

    def __init__(self, column: Any, needle: Mapping[str, object]) -> None:
        value = _check_needle(needle)
        super().__init__(column, sa.bindparam(None, value, type_=JSONDict()))


class array_overlap(FunctionElement[bool]):  # lower case, like sqlalchemy.func
    """``column && values``: the string-list column shares at least one element with ``values``."""

    type = sa.Boolean()
    inherit_cache = True
    name = "array_overlap"

    def __init__(self, column: Any, values: Sequence[str]) -> None:
        if not _is_text_list(values):
            raise InvalidDataError.for_field("tags", values, "expected a list of strings")
        super().__init__(column, sa.bindparam(None, list(values), type_=StringList()))


def _is_text_list(values: object) -> bool:
    return is_sequence(values) and all(isinstance(v, str) for v in values)


def _arguments(element: FunctionElement[bool]) -> tuple[Any, Any]:
    column, parameter = element.clauses.clauses
    return column, parameter


@compiles(json_contains, "postgresql")
def _json_contains_postgresql(element: json_contains, compiler: SQLCompiler, **kw: Any) -> str:
    column, needle = _arguments(element)
    return compiler.process(column.op("@>")(needle), **kw)


@compiles(array_overlap, "postgresql")
def _array_overlap_postgresql(element: array_overlap, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = _arguments(element)
    return compiler.process(column.op("&&")(values), **kw)


def _json_each(source: Any) -> Any:
    return sa.func.json_each(source).table_valued(*_JSON_EACH_COLUMNS).alias()


def _same_scalar(stored: Any, wanted: Any) -> sa.ColumnElement[bool]:
    """Return SQL true when two json_each rows hold equal scalars (jsonb equality rules)."""
    numeric = ("integer", "real")
    return sa.and_(
        sa.or_(
            stored.c.type == wanted.c.type,
            sa.and_(stored.c.type.in_(numeric), wanted.c.type.in_(numeric)),
        ),
        stored.c.atom.is_not_distinct_from(wanted.c.atom),
    )


@compiles(json_contains, "sqlite")
def _json_contains_sqlite(element: json_contains, compiler: SQLCompiler, **kw: Any) -> str:
    column, needle = _arguments(element)
    wanted = _json_each(needle)
    stored = _json_each(column)
    wanted_item = _json_each(wanted.c.value)
    stored_item = _json_each(stored.c.value)
    # Every element of a wanted array is somewhere in the stored array.
    array_contained = sa.and_(
        wanted.c.type == "array",
        stored.c.type == "array",
        ~sa.exists()
        .select_from(wanted_item)
        .where(~sa.exists().select_from(stored_item).where(_same_scalar(stored_item, wanted_item))),
    )
    key_matches = (
        sa.exists()
        .select_from(stored)
        .where(
            stored.c.key == wanted.c.key,
            sa.or_(sa.and_(wanted.c.type != "array", _same_scalar(stored, wanted)), array_contained),
        )
    )
    # "No wanted key is missing": NOT EXISTS (wanted key with no matching stored key).
    expression = sa.and_(
        sa.func.json_type(column) == "object",
        ~sa.exists().select_from(wanted).where(~key_matches),
    )
    return compiler.process(expression, **kw)


@compiles(array_overlap, "sqlite")
def _array_overlap_sqlite(element: array_overlap, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = _arguments(element)
    stored = _json_each(column)
    wanted = _json_each(values)
    expression = (
        sa.exists()
        .select_from(stored)
        .where(
            stored.c.type == "text",
            stored.c.atom.in_(sa.select(wanted.c.atom).where(wanted.c.type == "text").scalar_subquery()),
        )
    )
    return compiler.process(expression, **kw)
