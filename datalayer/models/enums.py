"""Closed value sets, stored as their string values with a CHECK constraint."""

from enum import StrEnum

__all__ = [
    "ACTIVE_SESSION_STATUSES",
    "FINISHED_SESSION_STATUSES",
    "ArchiveStatus",
    "MCPServerType",
    "MessageType",
    "PermissionDecisionType",
    "SessionMode",
    "SessionStatus",
    "TaskExecutionStatus",
    "ToolCallStatus",
]


class SessionMode(StrEnum):
    INTERACTIVE = "interactive"
    BACKGROUND = "background"


class SessionStatus(StrEnum):
    CREATED = "created"
    ACTIVE = "active"
    WAITING = "waiting"
    PROCESSING = "processing"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    TERMINATED = "terminated"


#: Statuses that count as "active" for quotas (``get_active_sessions``).
ACTIVE_SESSION_STATUSES = (SessionStatus.ACTIVE, SessionStatus.WAITING, SessionStatus.PROCESSING)
#: Statuses that count as finished (``get_completed_before``).
FINISHED_SESSION_STATUSES = (SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.TERMINATED)


class MessageType(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    RESULT = "result"


class ToolCallStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    DENIED = "denied"


class PermissionDecisionType(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class TaskExecutionStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ArchiveStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


class MCPServerType(StrEnum):
    STDIO = "stdio"
    SSE = "sse"
    HTTP = "http"
