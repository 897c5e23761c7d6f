"""Repositories: the generic ``Repository[ModelT]``, ``BaseRepository`` and one subclass per table."""

from datalayer.repositories.base import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    BaseRepository,
    BaseSoftDeleteRepository,
    Filter,
    OrderBy,
    Page,
    Repository,
    SoftDeleteRepository,
)
from datalayer.repositories.hook_execution import HookExecutionRepository
from datalayer.repositories.mcp_server import MCPServerRepository
from datalayer.repositories.message import MessageRepository
from datalayer.repositories.permission_decision import PermissionDecisionRepository
from datalayer.repositories.report import ReportRepository
from datalayer.repositories.session import SessionRepository
from datalayer.repositories.session_metrics_snapshot import SessionMetricsSnapshotRepository
from datalayer.repositories.session_template import SessionTemplateRepository
from datalayer.repositories.task import TaskRepository
from datalayer.repositories.task_execution import ExecutionStats, TaskExecutionRepository
from datalayer.repositories.tool_call import ToolCallRepository, ToolStatistics
from datalayer.repositories.user import UserRepository
from datalayer.repositories.working_directory_archive import WorkingDirectoryArchiveRepository

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "BaseRepository",
    "BaseSoftDeleteRepository",
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
]
