"""datalayer: a typed, async data-access layer on SQLModel for SQLite and PostgreSQL."""

from datalayer import models, repositories
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
)
from datalayer.models import *  # noqa: F403
from datalayer.repositories import *  # noqa: F403
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
    "instrument",
    "uninstrument",
]
__all__ += models.__all__
__all__ += repositories.__all__
