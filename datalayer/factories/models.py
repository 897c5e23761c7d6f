"""One factory per datalayer model, producing valid and plausible entities.

Built entities carry random (not persisted) foreign keys; :func:`datalayer.factories.persist`
creates the missing parents. Fields that depend on others (a finished session's
``completed_at``, a tool call's output for its status, a cost from token counts) are
computed together in ``dependent`` so that they agree, unless the caller passes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from polyfactory import Use
from polyfactory.decorators import post_generated

from datalayer.factories.base import (
    FAKER,
    MODELS,
    RNG,
    TOOL_NAMES,
    DataFactory,
    later,
    money,
    next_sequence,
    next_serial,
    pick_tags,
    random_uuid,
    sdk_options,
    sentence,
    tool_use_id,
    usage,
    weighted,
)
from datalayer.models import (
    FINISHED_SESSION_STATUSES,
    ArchiveStatus,
    HookExecutionModel,
    MCPServerModel,
    MCPServerType,
    MessageModel,
    MessageType,
    PermissionDecisionModel,
    PermissionDecisionType,
    ReportModel,
    SessionMetricsSnapshotModel,
    SessionMode,
    SessionModel,
    SessionStatus,
    SessionTemplateModel,
    TaskExecutionModel,
    TaskExecutionStatus,
    TaskModel,
    ToolCallModel,
    ToolCallStatus,
    UserModel,
    WorkingDirectoryArchiveModel,
)

__all__ = [
    "HookExecutionFactory",
    "MCPServerFactory",
    "MessageFactory",
    "PermissionDecisionFactory",
    "ReportFactory",
    "SessionFactory",
    "SessionMetricsSnapshotFactory",
    "SessionTemplateFactory",
    "TaskExecutionFactory",
    "TaskFactory",
    "ToolCallFactory",
    "UserFactory",
    "WorkingDirectoryArchiveFactory",
]

_WORDS = (
    "api",
    "build",
    "cache",
    "client",
    "config",
    "database",
    "deploy",
    "endpoint",
    "index",
    "job",
    "latency",
    "login",
    "migration",
    "parser",
    "pipeline",
    "query",
    "release",
    "schema",
    "service",
    "test",
    "worker",
)
_VERBS = ("Fix", "Refactor", "Review", "Document", "Investigate", "Speed up", "Add tests for", "Migrate")
_PROJECTS = ("billing", "checkout", "dashboard", "datalayer", "gateway", "ingest", "search", "webapp")
_HOOK_TYPES = ("PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop", "SubagentStop", "SessionStart")
_REPORT_TYPES = ("summary", "analysis", "code_review", "incident", "weekly")
_MCP_SERVERS = ("github", "filesystem", "postgres", "slack", "sentry", "playwright", "memory", "fetch")
_CRONS = ("0 9 * * 1-5", "*/15 * * * *", "0 0 * * *", "30 2 * * 0", "0 */6 * * *")
_FINDINGS = (
    "All checks passed",
    "Two flaky tests found",
    "Latency regression in the search endpoint",
    "No security issues found",
    "Dependencies are up to date",
    "Coverage dropped below target",
)


def _title() -> str:
    return f"{RNG.choice(_VERBS)} {RNG.choice(_WORDS)} {RNG.choice(_WORDS)}"


def _tool_input(tool_name: str) -> dict[str, Any]:
    if tool_name == "Bash":
        return {"command": RNG.choice(("pytest -q", "ls -la", "git status", "make build", "ruff check ."))}
    if tool_name in ("Read", "Write", "Edit"):
        return {"file_path": f"/workspace/{RNG.choice(_PROJECTS)}/src/{RNG.choice(_WORDS)}.py"}
    if tool_name in ("Glob", "Grep"):
        return {"pattern": RNG.choice(("**/*.py", "TODO", "def main", "import asyncio"))}
    if tool_name in ("WebFetch", "WebSearch"):
        return {"url": f"https://docs.example.com/{RNG.choice(_WORDS)}"}
    return {"description": _title()}


class UserFactory(DataFactory[UserModel]):
    """Users with unique usernames and emails (a serial number keeps them apart)."""

    __model__ = UserModel

    full_name = Use(lambda: FAKER.name())
    is_active = Use(lambda: RNG.random() < 0.9)

    @post_generated
    @classmethod
    def username(cls, full_name: str) -> str:
        """Return a username derived from the full name, made unique by a serial number."""
        slug = "".join(ch for ch in full_name.lower().replace(" ", ".") if ch.isalnum() or ch == ".")
        return f"{slug.strip('.')[:100]}{next_serial()}"

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return an email address for the username and, for most users, a last login."""
        created: datetime = values["created_at"]
        domain = RNG.choice(("example.com", "example.org", "mail.example.net"))
        return {
            "email": f"{values['username']}@{domain}",
            "last_login_at": later(created, 7 * 86400) if RNG.random() < 0.8 else None,
        }


class SessionFactory(DataFactory[SessionModel]):
    """Agent sessions; finished ones have counters and a ``completed_at``."""

    __model__ = SessionModel

    user_id = Use(random_uuid)
    name = Use(_title)
    mode = Use(lambda: weighted({SessionMode.INTERACTIVE: 4, SessionMode.BACKGROUND: 1}))
    status = Use(
        lambda: weighted(
            {
                SessionStatus.CREATED: 1,
                SessionStatus.ACTIVE: 2,
                SessionStatus.WAITING: 1,
                SessionStatus.PROCESSING: 1,
                SessionStatus.PAUSED: 1,
                SessionStatus.COMPLETED: 8,
                SessionStatus.FAILED: 1,
                SessionStatus.TERMINATED: 1,
            }
        )
    )
    sdk_options = Use(sdk_options)
    working_directory = Use(lambda: f"/workspace/{RNG.choice(_PROJECTS)}")

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return counters (zero for a new session) and ``completed_at`` for finished ones."""
        status = SessionStatus(values.get("status", SessionStatus.CREATED))
        counters = usage() if status != SessionStatus.CREATED else {}
        finished = status in FINISHED_SESSION_STATUSES
        completed_at = later(values["created_at"], 4 * 3600) if finished else None
        return {**counters, "completed_at": completed_at}


class MessageFactory(DataFactory[MessageModel]):
    """Messages: a system message first, then user and assistant turns.

    Sequence numbers count per ``session_id`` in this process (1, 2, 3, ...);
    :func:`datalayer.factories.persist` continues after the highest number already stored.
    ``result`` messages are made only on request (``message_type=MessageType.RESULT``).
    """

    __model__ = MessageModel

    session_id = Use(random_uuid)

    @post_generated
    @classmethod
    def sequence_number(cls, session_id: Any) -> int:
        """Return the next sequence number for this session."""
        return next_sequence(session_id)

    @post_generated
    @classmethod
    def message_type(cls, sequence_number: int) -> MessageType:
        """Return ``system`` first, then alternating user and assistant messages."""
        if sequence_number == 1:
            return MessageType.SYSTEM
        return MessageType.USER if sequence_number % 2 == 0 else MessageType.ASSISTANT

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return content shaped like the agent SDK's for the message type."""
        kind = MessageType(values["message_type"])
        content: dict[str, Any]
        if kind == MessageType.SYSTEM:
            content = {"subtype": "init", "model": RNG.choice(MODELS), "tools": list(TOOL_NAMES[:4])}
        elif kind == MessageType.USER:
            content = {"role": "user", "text": _title()}
        elif kind == MessageType.ASSISTANT:
            content = {
                "role": "assistant",
                "text": sentence(_WORDS),
                "usage": {"input_tokens": RNG.randint(50, 8000), "output_tokens": RNG.randint(10, 2000)},
            }
        else:
            content = {
                "subtype": "success",
                "text": RNG.choice(_FINDINGS),
                "num_turns": RNG.randint(1, 40),
                "duration_ms": RNG.randint(500, 600_000),
                "total_cost_usd": str(money(Decimal(RNG.randint(1, 5_000_000)) / 1_000_000)),
            }
        return {"content": content}


class ToolCallFactory(DataFactory[ToolCallModel]):
    """Tool calls whose output, error, permission and timing agree with their status."""

    __model__ = ToolCallModel

    session_id = Use(random_uuid)
    tool_use_id = Use(tool_use_id)
    tool_name = Use(lambda: RNG.choice(TOOL_NAMES))
    status = Use(
        lambda: weighted(
            {
                ToolCallStatus.PENDING: 2,
                ToolCallStatus.RUNNING: 1,
                ToolCallStatus.SUCCESS: 12,
                ToolCallStatus.ERROR: 2,
                ToolCallStatus.DENIED: 1,
            }
        )
    )

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return input, output, permission, error and timing consistent with the status."""
        status = ToolCallStatus(values["status"])
        created: datetime = values["created_at"]
        result: dict[str, Any] = {"tool_input": _tool_input(values["tool_name"])}
        if status == ToolCallStatus.PENDING:
            # Half of the pending calls still wait for a permission decision.
            result["permission_decision"] = None if RNG.random() < 0.5 else PermissionDecisionType.ALLOW
            return result
        result["permission_decision"] = (
            PermissionDecisionType.DENY if status == ToolCallStatus.DENIED else PermissionDecisionType.ALLOW
        )
        if status == ToolCallStatus.DENIED:
            result["error_message"] = "Permission denied by user"
            return result
        started = later(created, 5)
        result["started_at"] = started
        if status == ToolCallStatus.RUNNING:
            return result
        # Skewed like real tool calls: mostly well under a second, a few take many seconds.
        duration_ms = int(10 ** RNG.uniform(1, 4.5))
        result["duration_ms"] = duration_ms
        result["completed_at"] = later(started, duration_ms / 1000)
        if status == ToolCallStatus.ERROR:
            result["is_error"] = True
            result["error_message"] = RNG.choice(("Command failed with exit code 1", "File not found"))
            result["tool_output"] = {"error": result["error_message"]}
        else:
            result["tool_output"] = {"output": sentence(_WORDS), "truncated": False}
        return result


class TaskFactory(DataFactory[TaskModel]):
    """Tasks; scheduled ones have a cron expression."""

    __model__ = TaskModel

    user_id = Use(random_uuid)
    name = Use(_title)
    description = Use(lambda: sentence(_WORDS, 6, 14))
    prompt_template = Use(
        lambda: "Review the {repository} changes since {since} and report on " + RNG.choice(_WORDS) + "."
    )
    sdk_options = Use(sdk_options)
    tags = Use(pick_tags)
    is_scheduled = Use(lambda: RNG.random() < 0.4)

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return a cron schedule (mostly enabled) for scheduled tasks, nothing for others."""
        if not values.get("is_scheduled"):
            return {"schedule_cron": None, "schedule_enabled": False}
        return {"schedule_cron": RNG.choice(_CRONS), "schedule_enabled": RNG.random() < 0.75}


class TaskExecutionFactory(DataFactory[TaskExecutionModel]):
    """Task runs whose timing, error and result agree with their status."""

    __model__ = TaskExecutionModel

    task_id = Use(random_uuid)
    status = Use(
        lambda: weighted(
            {
                TaskExecutionStatus.PENDING: 1,
                TaskExecutionStatus.RUNNING: 1,
                TaskExecutionStatus.COMPLETED: 8,
                TaskExecutionStatus.FAILED: 2,
                TaskExecutionStatus.CANCELLED: 1,
            }
        )
    )

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return start, completion, duration, error and result data for the status."""
        status = TaskExecutionStatus(values["status"])
        if status == TaskExecutionStatus.PENDING:
            return {}
        started = later(values["created_at"], 60)
        if status == TaskExecutionStatus.RUNNING:
            return {"started_at": started}
        duration = round(RNG.uniform(0.5, 900.0), 3)
        result: dict[str, Any] = {
            "started_at": started,
            "completed_at": later(started, duration),
            "duration_seconds": duration,
        }
        if status == TaskExecutionStatus.COMPLETED:
            result["result_data"] = {"summary": RNG.choice(_FINDINGS), "items": RNG.randint(0, 50)}
        elif status == TaskExecutionStatus.FAILED:
            result["error_message"] = RNG.choice(("Timed out", "Agent error: max turns reached"))
        return result


class ReportFactory(DataFactory[ReportModel]):
    """Reports with JSON content whose ``text`` is a finding (what ``search_content`` matches)."""

    __model__ = ReportModel

    user_id = Use(random_uuid)
    title = Use(lambda: f"{RNG.choice(_PROJECTS).capitalize()} {RNG.choice(_REPORT_TYPES)} report")
    report_type = Use(lambda: RNG.choice(_REPORT_TYPES))
    content = Use(
        lambda: {
            "text": RNG.choice(_FINDINGS),
            "sections": [sentence(_WORDS) for _ in range(RNG.randint(1, 3))],
            "score": RNG.randint(0, 100),
        }
    )
    tags = Use(pick_tags)


class MCPServerFactory(DataFactory[MCPServerModel]):
    """MCP server configurations; pass ``user_id=None`` for a global one."""

    __model__ = MCPServerModel

    user_id = Use(random_uuid)
    name = Use(lambda: RNG.choice(_MCP_SERVERS))
    server_type = Use(lambda: weighted({MCPServerType.STDIO: 3, MCPServerType.SSE: 1, MCPServerType.HTTP: 2}))
    is_enabled = Use(lambda: RNG.random() < 0.85)

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return a configuration matching the server type."""
        name = values["name"]
        if MCPServerType(values["server_type"]) == MCPServerType.STDIO:
            config: dict[str, Any] = {
                "command": "npx",
                "args": ["-y", f"@modelcontextprotocol/server-{name}"],
                "env": {},
            }
        else:
            config = {"url": f"https://mcp.example.com/{name}/{values['server_type']}", "headers": {}}
        return {"config": config}


class SessionTemplateFactory(DataFactory[SessionTemplateModel]):
    """Session templates with tags, visibility flags and usage counts."""

    __model__ = SessionTemplateModel

    user_id = Use(random_uuid)
    name = Use(_title)
    description = Use(lambda: sentence(_WORDS, 6, 14))
    system_prompt = Use(lambda: f"You are a careful engineer working on {RNG.choice(_PROJECTS)}.")
    sdk_options = Use(sdk_options)
    tags = Use(pick_tags)
    is_public = Use(lambda: RNG.random() < 0.3)
    is_organization_shared = Use(lambda: RNG.random() < 0.3)
    usage_count = Use(lambda: RNG.choice((0, RNG.randint(1, 500))))

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``last_used_at`` for templates that were used."""
        used = values.get("usage_count", 0) > 0
        return {"last_used_at": later(values["created_at"], 14 * 86400) if used else None}


class HookExecutionFactory(DataFactory[HookExecutionModel]):
    """Hook runs; tool hooks carry a ``tool_use_id``."""

    __model__ = HookExecutionModel

    session_id = Use(random_uuid)
    hook_type = Use(lambda: RNG.choice(_HOOK_TYPES))
    continue_execution = Use(lambda: RNG.random() < 0.95)
    duration_ms = Use(lambda: RNG.randint(1, 500))

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return tool fields for tool hooks and an output or error for the outcome."""
        tool_hook = values["hook_type"] in ("PreToolUse", "PostToolUse")
        tool_name = RNG.choice(TOOL_NAMES)
        blocked = not values.get("continue_execution", True)
        return {
            "tool_use_id": tool_use_id() if tool_hook else None,
            "input_data": {"tool_name": tool_name, "tool_input": _tool_input(tool_name)} if tool_hook else {},
            "output_data": {"decision": "block" if blocked else "approve"},
            "error_message": "Blocked by policy" if blocked else None,
        }


class PermissionDecisionFactory(DataFactory[PermissionDecisionModel]):
    """Allow/deny decisions, mostly allow."""

    __model__ = PermissionDecisionModel

    session_id = Use(random_uuid)
    tool_use_id = Use(tool_use_id)
    tool_name = Use(lambda: RNG.choice(TOOL_NAMES))
    decision = Use(lambda: weighted({PermissionDecisionType.ALLOW: 4, PermissionDecisionType.DENY: 1}))

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return a reason matching the decision and the tool's input."""
        allowed = PermissionDecisionType(values["decision"]) == PermissionDecisionType.ALLOW
        return {
            "reason": "Allowed by user" if allowed else "Outside the working directory",
            "input_data": _tool_input(values["tool_name"]),
        }


class WorkingDirectoryArchiveFactory(DataFactory[WorkingDirectoryArchiveModel]):
    """Archives whose path, size, error and completion agree with their status."""

    __model__ = WorkingDirectoryArchiveModel

    session_id = Use(random_uuid)
    status = Use(
        lambda: weighted(
            {
                ArchiveStatus.PENDING: 2,
                ArchiveStatus.IN_PROGRESS: 1,
                ArchiveStatus.COMPLETED: 6,
                ArchiveStatus.FAILED: 1,
            }
        )
    )
    compression = Use(lambda: weighted({"gzip": 3, "zstd": 2, "bz2": 1}))

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return a storage path and size for completed archives, an error for failed ones."""
        status = ArchiveStatus(values["status"])
        if status == ArchiveStatus.COMPLETED:
            return {
                "storage_path": f"s3://datalayer-archives/{values['session_id']}.tar",
                "size_bytes": RNG.randint(10_000, 2_000_000_000),
                "completed_at": later(values["created_at"], 3600),
            }
        if status == ArchiveStatus.FAILED:
            return {"error_message": "Upload failed: connection reset"}
        return {}


class SessionMetricsSnapshotFactory(DataFactory[SessionMetricsSnapshotModel]):
    """Point-in-time usage counters of a session."""

    __model__ = SessionMetricsSnapshotModel

    session_id = Use(random_uuid)

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return plausible counters."""
        return usage()


SessionFactory.__parents__ = {"user_id": UserFactory}
MessageFactory.__parents__ = {"session_id": SessionFactory}
ToolCallFactory.__parents__ = {"session_id": SessionFactory}
TaskFactory.__parents__ = {"user_id": UserFactory}
TaskExecutionFactory.__parents__ = {"task_id": TaskFactory}
ReportFactory.__parents__ = {"user_id": UserFactory}
MCPServerFactory.__parents__ = {"user_id": UserFactory}
SessionTemplateFactory.__parents__ = {"user_id": UserFactory}
HookExecutionFactory.__parents__ = {"session_id": SessionFactory}
PermissionDecisionFactory.__parents__ = {"session_id": SessionFactory}
WorkingDirectoryArchiveFactory.__parents__ = {"session_id": SessionFactory}
SessionMetricsSnapshotFactory.__parents__ = {"session_id": SessionFactory}
