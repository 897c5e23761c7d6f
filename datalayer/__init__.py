"""datalayer: a typed, async data-access layer on SQLModel for SQLite and PostgreSQL.

Names are imported on first use (PEP 562 module ``__getattr__``): ``import datalayer`` alone
loads neither SQLAlchemy nor the models, so tools that need only part of the package start
fast. Type checkers see ordinary imports (the ``TYPE_CHECKING`` block).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datalayer.database import (
        DEFAULT_DATABASE_URL as DEFAULT_DATABASE_URL,
    )
    from datalayer.database import (
        Database as Database,
    )
    from datalayer.errors import (
        ConflictError as ConflictError,
    )
    from datalayer.errors import (
        ConstraintViolationError as ConstraintViolationError,
    )
    from datalayer.errors import (
        DatabaseUnavailableError as DatabaseUnavailableError,
    )
    from datalayer.errors import (
        DataLayerError as DataLayerError,
    )
    from datalayer.errors import (
        InvalidDataError as InvalidDataError,
    )
    from datalayer.errors import (
        NotFoundError as NotFoundError,
    )
    from datalayer.errors import (
        ReadOnlyError as ReadOnlyError,
    )
    from datalayer.errors import (
        StaleDataError as StaleDataError,
    )
    from datalayer.errors import (
        UsageError as UsageError,
    )
    from datalayer.models import (
        ACTIVE_SESSION_STATUSES as ACTIVE_SESSION_STATUSES,
    )
    from datalayer.models import (
        ALL_MODELS as ALL_MODELS,
    )
    from datalayer.models import (
        FINISHED_SESSION_STATUSES as FINISHED_SESSION_STATUSES,
    )
    from datalayer.models import (
        MAX_BIGINT as MAX_BIGINT,
    )
    from datalayer.models import (
        ArchiveStatus as ArchiveStatus,
    )
    from datalayer.models import (
        EntityModel as EntityModel,
    )
    from datalayer.models import (
        HookExecutionModel as HookExecutionModel,
    )
    from datalayer.models import (
        MCPServerModel as MCPServerModel,
    )
    from datalayer.models import (
        MCPServerType as MCPServerType,
    )
    from datalayer.models import (
        MessageModel as MessageModel,
    )
    from datalayer.models import (
        MessageType as MessageType,
    )
    from datalayer.models import (
        MutableModel as MutableModel,
    )
    from datalayer.models import (
        PermissionDecisionModel as PermissionDecisionModel,
    )
    from datalayer.models import (
        PermissionDecisionType as PermissionDecisionType,
    )
    from datalayer.models import (
        ReportModel as ReportModel,
    )
    from datalayer.models import (
        SessionMetricsSnapshotModel as SessionMetricsSnapshotModel,
    )
    from datalayer.models import (
        SessionMode as SessionMode,
    )
    from datalayer.models import (
        SessionModel as SessionModel,
    )
    from datalayer.models import (
        SessionStatus as SessionStatus,
    )
    from datalayer.models import (
        SessionTemplateModel as SessionTemplateModel,
    )
    from datalayer.models import (
        SoftDeleteModel as SoftDeleteModel,
    )
    from datalayer.models import (
        TaskExecutionModel as TaskExecutionModel,
    )
    from datalayer.models import (
        TaskExecutionStatus as TaskExecutionStatus,
    )
    from datalayer.models import (
        TaskModel as TaskModel,
    )
    from datalayer.models import (
        ToolCallModel as ToolCallModel,
    )
    from datalayer.models import (
        ToolCallStatus as ToolCallStatus,
    )
    from datalayer.models import (
        UsageCounters as UsageCounters,
    )
    from datalayer.models import (
        UserModel as UserModel,
    )
    from datalayer.models import (
        WorkingDirectoryArchiveModel as WorkingDirectoryArchiveModel,
    )
    from datalayer.models import (
        metadata as metadata,
    )
    from datalayer.repositories import (
        DEFAULT_LIMIT as DEFAULT_LIMIT,
    )
    from datalayer.repositories import (
        MAX_LIMIT as MAX_LIMIT,
    )
    from datalayer.repositories import (
        BaseRepository as BaseRepository,
    )
    from datalayer.repositories import (
        BaseSoftDeleteRepository as BaseSoftDeleteRepository,
    )
    from datalayer.repositories import (
        ExecutionStats as ExecutionStats,
    )
    from datalayer.repositories import (
        Filter as Filter,
    )
    from datalayer.repositories import (
        HookExecutionRepository as HookExecutionRepository,
    )
    from datalayer.repositories import (
        MCPServerRepository as MCPServerRepository,
    )
    from datalayer.repositories import (
        MessageRepository as MessageRepository,
    )
    from datalayer.repositories import (
        OrderBy as OrderBy,
    )
    from datalayer.repositories import (
        Page as Page,
    )
    from datalayer.repositories import (
        PermissionDecisionRepository as PermissionDecisionRepository,
    )
    from datalayer.repositories import (
        ReportRepository as ReportRepository,
    )
    from datalayer.repositories import (
        Repository as Repository,
    )
    from datalayer.repositories import (
        SessionMetricsSnapshotRepository as SessionMetricsSnapshotRepository,
    )
    from datalayer.repositories import (
        SessionRepository as SessionRepository,
    )
    from datalayer.repositories import (
        SessionTemplateRepository as SessionTemplateRepository,
    )
    from datalayer.repositories import (
        SoftDeleteRepository as SoftDeleteRepository,
    )
    from datalayer.repositories import (
        TaskExecutionRepository as TaskExecutionRepository,
    )
    from datalayer.repositories import (
        TaskRepository as TaskRepository,
    )
    from datalayer.repositories import (
        ToolCallRepository as ToolCallRepository,
    )
    from datalayer.repositories import (
        ToolStatistics as ToolStatistics,
    )
    from datalayer.repositories import (
        UserRepository as UserRepository,
    )
    from datalayer.repositories import (
        WorkingDirectoryArchiveRepository as WorkingDirectoryArchiveRepository,
    )
    from datalayer.tracing import instrument as instrument
    from datalayer.tracing import uninstrument as uninstrument

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
    "metadata",
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
