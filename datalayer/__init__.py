"""datalayer: a typed, async data-access layer on SQLModel for SQLite and PostgreSQL.

Names are imported on first use (PEP 562 module ``__getattr__``): ``import datalayer`` alone
loads neither SQLAlchemy nor the models, so tools that need only part of the package start
fast. Type checkers see ordinary imports (the ``TYPE_CHECKING`` block).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ imports each name on first use
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
    from datalayer.models import (
        ACTIVE_SESSION_STATUSES,
        ALL_MODELS,
        FINISHED_SESSION_STATUSES,
        MAX_BIGINT,
        ArchiveStatus,
        EntityModel,
        HookExecutionModel,
        MCPServerModel,
        MCPServerType,
        MessageModel,
        MessageType,
        MutableModel,
        PermissionDecisionModel,
        PermissionDecisionType,
        ReportModel,
        SessionMetricsSnapshotModel,
        SessionMode,
        SessionModel,
        SessionStatus,
        SessionTemplateModel,
        SoftDeleteModel,
        TaskExecutionModel,
        TaskExecutionStatus,
        TaskModel,
        ToolCallModel,
        ToolCallStatus,
        UsageCounters,
        UserModel,
        WorkingDirectoryArchiveModel,
        metadata,
    )
    from datalayer.repositories import (
        DEFAULT_LIMIT,
        MAX_LIMIT,
        BaseRepository,
        BaseSoftDeleteRepository,
        ExecutionStats,
        Filter,
        HookExecutionRepository,
        MCPServerRepository,
        MessageRepository,
        OrderBy,
        Page,
        PermissionDecisionRepository,
        ReportRepository,
        Repository,
        SessionMetricsSnapshotRepository,
        SessionRepository,
        SessionTemplateRepository,
        SoftDeleteRepository,
        TaskExecutionRepository,
        TaskRepository,
        ToolCallRepository,
        ToolStatistics,
        UserRepository,
        WorkingDirectoryArchiveRepository,
    )
    from datalayer.tracing import instrument, uninstrument

#: The distribution's name on PyPI (the import name is ``datalayer``).
DISTRIBUTION = "sqlmodel-datalayer"

__version__: str  # read from the installed package's metadata on first use (see __getattr__)

#: The module each public name lives in (imported on first access).
_MODULES: dict[str, tuple[str, ...]] = {
    "datalayer.database": (
        "DEFAULT_DATABASE_URL",
        "Database",
    ),
    "datalayer.errors": (
        "ConflictError",
        "ConstraintViolationError",
        "DataLayerError",
        "DatabaseUnavailableError",
        "InvalidDataError",
        "NotFoundError",
        "ReadOnlyError",
        "StaleDataError",
        "UsageError",
    ),
    "datalayer.models": (
        "ACTIVE_SESSION_STATUSES",
        "ALL_MODELS",
        "ArchiveStatus",
        "EntityModel",
        "FINISHED_SESSION_STATUSES",
        "HookExecutionModel",
        "MAX_BIGINT",
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
    ),
    "datalayer.repositories": (
        "BaseRepository",
        "BaseSoftDeleteRepository",
        "DEFAULT_LIMIT",
        "ExecutionStats",
        "Filter",
        "HookExecutionRepository",
        "MAX_LIMIT",
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
    ),
    "datalayer.tracing": ("instrument", "uninstrument"),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "ACTIVE_SESSION_STATUSES",
    "ALL_MODELS",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_LIMIT",
    "FINISHED_SESSION_STATUSES",
    "MAX_BIGINT",
    "MAX_LIMIT",
    "ArchiveStatus",
    "BaseRepository",
    "BaseSoftDeleteRepository",
    "ConflictError",
    "ConstraintViolationError",
    "DataLayerError",
    "Database",
    "DatabaseUnavailableError",
    "EntityModel",
    "ExecutionStats",
    "Filter",
    "HookExecutionModel",
    "HookExecutionRepository",
    "InvalidDataError",
    "MCPServerModel",
    "MCPServerRepository",
    "MCPServerType",
    "MessageModel",
    "MessageRepository",
    "MessageType",
    "MutableModel",
    "NotFoundError",
    "OrderBy",
    "Page",
    "PermissionDecisionModel",
    "PermissionDecisionRepository",
    "PermissionDecisionType",
    "ReadOnlyError",
    "ReportModel",
    "ReportRepository",
    "Repository",
    "SessionMetricsSnapshotModel",
    "SessionMetricsSnapshotRepository",
    "SessionMode",
    "SessionModel",
    "SessionRepository",
    "SessionStatus",
    "SessionTemplateModel",
    "SessionTemplateRepository",
    "SoftDeleteModel",
    "SoftDeleteRepository",
    "StaleDataError",
    "TaskExecutionModel",
    "TaskExecutionRepository",
    "TaskExecutionStatus",
    "TaskModel",
    "TaskRepository",
    "ToolCallModel",
    "ToolCallRepository",
    "ToolCallStatus",
    "ToolStatistics",
    "UsageCounters",
    "UsageError",
    "UserModel",
    "UserRepository",
    "WorkingDirectoryArchiveModel",
    "WorkingDirectoryArchiveRepository",
    "instrument",
    "metadata",
    "uninstrument",
]


def _installed_version() -> str:
    """Return the installed distribution's version (pyproject.toml is the one source)."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
        return "0+unknown"


if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name stays an error there

    def __getattr__(name: str) -> object:
        """Return the public name ``name``, importing its module on first use."""
        if name == "__version__":
            version: object = _installed_version()
            globals()[name] = version
            return version
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'datalayer' has no attribute {name!r}")
        value = getattr(import_module(module), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        """Return the module's names, the lazy ones included."""
        return sorted({*globals(), *_LAZY})
