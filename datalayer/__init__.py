"""datalayer: a typed, async data-access layer on SQLModel for SQLite and PostgreSQL.

The names below are imported on first use (PEP 562 ``__getattr__``), so that tools which
only need a submodule (the ``datalayer`` command's ``--help``, ``datalayer.migrate``) do not
pay for SQLAlchemy, the 13 models and the repositories. ``from datalayer import Database``
and ``import datalayer; datalayer.Database`` behave as ordinary imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ imports on first use
    from datalayer.database import DEFAULT_DATABASE_URL as DEFAULT_DATABASE_URL
    from datalayer.database import Database as Database
    from datalayer.errors import ConflictError as ConflictError
    from datalayer.errors import ConstraintViolationError as ConstraintViolationError
    from datalayer.errors import DatabaseUnavailableError as DatabaseUnavailableError
    from datalayer.errors import DataLayerError as DataLayerError
    from datalayer.errors import InvalidDataError as InvalidDataError
    from datalayer.errors import NotFoundError as NotFoundError
    from datalayer.errors import ReadOnlyError as ReadOnlyError
    from datalayer.errors import StaleDataError as StaleDataError
    from datalayer.models import *  # noqa: F403
    from datalayer.repositories import *  # noqa: F403
    from datalayer.tracing import instrument as instrument
    from datalayer.tracing import uninstrument as uninstrument

#: The distribution's name on PyPI (the import name is ``datalayer``).
DISTRIBUTION = "sqlmodel-datalayer"

__version__: str  # read from the installed package's metadata on first use (__getattr__)

_DATABASE = ("DEFAULT_DATABASE_URL", "Database")
_ERRORS = (
    "ConflictError",
    "ConstraintViolationError",
    "DataLayerError",
    "DatabaseUnavailableError",
    "InvalidDataError",
    "NotFoundError",
    "ReadOnlyError",
    "StaleDataError",
)
# The public names of datalayer.models and datalayer.repositories (tests/test_package.py
# checks these lists against those modules' __all__).
_MODELS = (
    "ACTIVE_SESSION_STATUSES",
    "ALL_MODELS",
    "FINISHED_SESSION_STATUSES",
    "MAX_BIGINT",
    "ArchiveStatus",
    "EntityModel",
    "HookExecutionModel",
    "MCPServerModel",
    "MCPServerType",
    "MessageModel",
    "MessageType",
    "MutableModel",
    "PermissionDecisionModel",
    "PermissionDecisionType",
    "ReportModel",
    "SessionMetricsSnapshotModel",
    "SessionMode",
    "SessionModel",
    "SessionStatus",
    "SessionTemplateModel",
    "SoftDeleteModel",
    "TaskExecutionModel",
    "TaskExecutionStatus",
    "TaskModel",
    "ToolCallModel",
    "ToolCallStatus",
    "UsageCounters",
    "UserModel",
    "WorkingDirectoryArchiveModel",
    "metadata",
)
_REPOSITORIES = (
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "ExecutionStats",
    "Filter",
    "HookExecutionRepository",
    "MCPServerRepository",
    "MessageRepository",
    "OrderBy",
    "Page",
    "PermissionDecisionRepository",
    "ReportRepository",
    "Repository",
    "SessionMetricsSnapshotRepository",
    "SessionRepository",
    "SessionTemplateRepository",
    "SoftDeleteRepository",
    "TaskExecutionRepository",
    "TaskRepository",
    "ToolCallRepository",
    "ToolStatistics",
    "UserRepository",
    "WorkingDirectoryArchiveRepository",
)
_TRACING = ("instrument", "uninstrument")
_HOME = {
    **dict.fromkeys(_DATABASE, "datalayer.database"),
    **dict.fromkeys(_ERRORS, "datalayer.errors"),
    **dict.fromkeys(_MODELS, "datalayer.models"),
    **dict.fromkeys(_REPOSITORIES, "datalayer.repositories"),
    **dict.fromkeys(_TRACING, "datalayer.tracing"),
}

__all__ = [*_DATABASE, *_ERRORS, *_TRACING, *_MODELS, *_REPOSITORIES]


def __getattr__(name: str) -> object:
    """Return a public name, importing the submodule that defines it on first use."""
    if name == "__version__":
        value: object = _installed_version()
        globals()[name] = value
        return value
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'datalayer' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def _installed_version() -> str:
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
        return "0+unknown"


def __dir__() -> list[str]:
    """Return the module's names, the not yet imported ones included."""
    return sorted({*globals(), *__all__})
