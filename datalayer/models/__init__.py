"""The 13 tables of datalayer: SQLModel classes that are both ORM tables and entities."""

from datalayer.models.base import (
    MAX_BIGINT,
    EntityModel,
    MutableModel,
    SoftDeleteModel,
    UsageCounters,
    metadata,
)
from datalayer.models.enums import (
    ACTIVE_SESSION_STATUSES,
    FINISHED_SESSION_STATUSES,
    ArchiveStatus,
    MCPServerType,
    MessageType,
    PermissionDecisionType,
    SessionMode,
    SessionStatus,
    TaskExecutionStatus,
    ToolCallStatus,
)
from datalayer.models.hook_execution import HookExecutionModel
from datalayer.models.mcp_server import MCPServerModel
from datalayer.models.message import MessageModel
from datalayer.models.permission_decision import PermissionDecisionModel
from datalayer.models.report import ReportModel
from datalayer.models.session import SessionModel
from datalayer.models.session_metrics_snapshot import SessionMetricsSnapshotModel
from datalayer.models.session_template import SessionTemplateModel
from datalayer.models.task import TaskModel
from datalayer.models.task_execution import TaskExecutionModel
from datalayer.models.tool_call import ToolCallModel
from datalayer.models.user import UserModel
from datalayer.models.working_directory_archive import WorkingDirectoryArchiveModel

__all__ = [
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
]

#: Every table model, parents before children (the order to create or seed them).
ALL_MODELS: tuple[type[EntityModel], ...] = (
    UserModel,
    SessionModel,
    MessageModel,
    ToolCallModel,
    TaskModel,
    TaskExecutionModel,
    ReportModel,
    MCPServerModel,
    SessionTemplateModel,
    HookExecutionModel,
    PermissionDecisionModel,
    WorkingDirectoryArchiveModel,
    SessionMetricsSnapshotModel,
)
