"""datalayer: a typed, async data-access layer on SQLModel for SQLite and PostgreSQL."""

from datalayer.database import DEFAULT_DATABASE_URL, Database
from datalayer.errors import (
    ConflictError,
    ConstraintViolationError,
    DatabaseUnavailableError,
    DataLayerError,
    InvalidDataError,
    NotFoundError,
    ReadOnlyError,
    StaleDataError,
    UsageError,
)
from datalayer.models import *  # noqa: F403
from datalayer.models import __all__ as _model_names
from datalayer.repositories import *  # noqa: F403
from datalayer.repositories import __all__ as _repository_names
from datalayer.tracing import instrument, uninstrument

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ConflictError",
    "ConstraintViolationError",
    "DataLayerError",
    "Database",
    "DatabaseUnavailableError",
    "InvalidDataError",
    "NotFoundError",
    "ReadOnlyError",
    "StaleDataError",
    "UsageError",
    "instrument",
    "uninstrument",
    *_model_names,
    *_repository_names,
]
