"""Validation of repository input against a table model, before any SQL is sent.

SQLModel table classes do not validate on construction, so each model gets a twin
non-table pydantic model (same fields, ``extra="forbid"``) for whole rows and a
``TypeAdapter`` per field for partial updates. Failures become ``InvalidDataError``
naming the field and the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar, cast, get_args, get_origin
from uuid import UUID

import pydantic
from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from sqlmodel import SQLModel

from datalayer.errors import InvalidDataError
from datalayer.sanitize import check_value

__all__ = ["IMMUTABLE_FIELDS", "ModelValidator", "as_uuid", "validator_for"]

ModelT = TypeVar("ModelT", bound=SQLModel)

_INT32 = 2**31

#: Fields that no update may change.
IMMUTABLE_FIELDS = frozenset({"id", "created_at"})


def as_uuid(value: object, field: str = "id") -> UUID:
    """Return ``value`` as a UUID (a UUID or its string form), else raise InvalidDataError."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise InvalidDataError.for_field(field, value, "not a UUID")


def _to_invalid(error: ValidationError, values: Mapping[str, object] | None = None) -> InvalidDataError:
    first = error.errors(include_url=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or "value"
    field = str(first["loc"][0]) if first["loc"] else location
    value = values.get(field, first.get("input")) if values is not None else first.get("input")
    if first["type"] == "extra_forbidden":
        return InvalidDataError.for_field(field, value, "unknown field")
    if first["type"] == "missing":
        return InvalidDataError(f"{field}: field required", field=field, value=None)
    return InvalidDataError.for_field(location, first.get("input", value), first["msg"])


def _is_datetime_field(annotation: Any) -> bool:
    return annotation is datetime or datetime in get_args(annotation)


# Values of these types can hold what a database does not store faithfully (datalayer.sanitize);
# UUIDs, datetimes, Decimals, bools and enum members are the column types' business.
_SANITIZED = (str, int, float, list, dict)


def _bounded_int64(info: FieldInfo) -> bool:
    """Return True for an int field whose own ge/le bounds already keep it within 64 bits."""
    if info.annotation is not int:
        return False
    # pydantic keeps Field(ge=..., le=...) as annotated_types.Ge / Le objects in ``metadata``.
    low = next((m.ge for m in info.metadata if hasattr(m, "ge")), None)
    high = next((m.le for m in info.metadata if hasattr(m, "le")), None)
    return isinstance(low, int) and isinstance(high, int) and low >= -(2**63) and high <= 2**63 - 1


def _needs_sanitizing(annotation: Any) -> bool:
    """Return True if a field of this annotation may hold strings, JSON, lists or plain numbers."""
    if annotation is Any or annotation in _SANITIZED:
        return True
    if get_origin(annotation) in (list, dict):
        return True
    return any(_needs_sanitizing(arg) for arg in get_args(annotation) if arg is not type(None))


class ModelValidator(Generic[ModelT]):
    """Validates whole rows and partial updates for one table model."""

    def __init__(self, model: type[ModelT]) -> None:
        self.model = model
        self.fields = dict(model.model_fields)
        definitions: dict[str, Any] = {name: (info.annotation, info) for name, info in self.fields.items()}
        self._row_model: type[pydantic.BaseModel] = pydantic.create_model(
            f"{model.__name__}Input",
            __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
            **definitions,
        )
        # The row model's own validator: ``model_validate`` adds a Python call per row.
        self._validate_row: Callable[[object], pydantic.BaseModel] = (
            self._row_model.__pydantic_validator__.validate_python
        )
        self._adapters: dict[str, TypeAdapter[Any]] = {}
        self._datetime_fields = tuple(n for n, i in self.fields.items() if _is_datetime_field(i.annotation))
        self._sanitized_fields = tuple(
            n for n, i in self.fields.items() if _needs_sanitizing(i.annotation) and not _bounded_int64(i)
        )

    def row(self, values: Mapping[str, object]) -> dict[str, Any]:
        """Return a complete, validated row (defaults filled in) for an INSERT."""
        try:
            validated = self._validate_row(values)
        except ValidationError as exc:
            raise _to_invalid(exc, values) from exc
        row: dict[str, Any] = vars(validated)  # the validated model itself is not kept
        self._check_datetimes(row)
        for name in self._sanitized_fields:
            value: object = row[name]
            # Inlined fast path (most values of a bulk insert): None, plain ASCII text, small ints.
            if (
                value is None
                or (type(value) is str and value.isascii() and "\x00" not in value)
                or (type(value) is int and -_INT32 < value < _INT32)
            ):
                continue
            check_value(name, value)
        return row

    def changes(self, values: Mapping[str, object]) -> dict[str, Any]:
        """Return validated values for an UPDATE of the given fields only."""
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if name in IMMUTABLE_FIELDS and name in self.fields:
                raise InvalidDataError.for_field(name, value, "cannot be updated")
            changes[name] = self.field_value(name, value)
        return changes

    def field_value(self, name: str, value: object) -> Any:
        """Return ``value`` validated as the model's field ``name`` (immutable fields allowed)."""
        if name not in self.fields:
            raise InvalidDataError.for_field(name, value, "unknown field")
        try:
            validated = self._adapter(name).validate_python(value)
        except ValidationError as exc:
            problem = exc.errors(include_url=False)[0]["msg"]
            raise InvalidDataError.for_field(name, value, problem) from exc
        self._check_datetimes({name: validated})
        check_value(name, validated)
        return validated

    def _adapter(self, name: str) -> TypeAdapter[Any]:
        adapter = self._adapters.get(name)
        if adapter is None:
            info = self.fields[name]
            # The annotation is assembled at run time from the model's field.
            adapter = TypeAdapter(cast(Any, Annotated[info.annotation, info]))
            self._adapters[name] = adapter
        return adapter

    def _check_datetimes(self, row: Mapping[str, Any]) -> None:
        """Refuse naive datetimes, which pydantic lets through (JSON, strings: datalayer.sanitize)."""
        for name in self._datetime_fields:
            value = row.get(name)
            if value is None or getattr(value, "tzinfo", None) is UTC:
                continue
            if isinstance(value, datetime) and value.utcoffset() is None:
                raise InvalidDataError.for_field(
                    name, value, "naive datetime; pass an aware one, e.g. datetime.now(UTC)"
                )


_VALIDATORS: dict[type[SQLModel], ModelValidator[Any]] = {}


def validator_for(model: type[ModelT]) -> ModelValidator[ModelT]:
    """Return the (cached) validator of a table model."""
    validator = _VALIDATORS.get(model)
    if validator is None:
        validator = _VALIDATORS.setdefault(model, ModelValidator(model))
    return validator
