"""The demo: every specialized query of the 13 repositories, run once, summarized."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlmodel import col

from datalayer.guards import is_list, is_mapping
from datalayer.models import (
    FINISHED_SESSION_STATUSES,
    EntityModel,
    HookExecutionModel,
    MessageModel,
    MessageType,
    PermissionDecisionType,
    SessionModel,
    SessionStatus,
    ToolCallStatus,
)
from datalayer.repositories import (
    HookExecutionRepository,
    MCPServerRepository,
    MessageRepository,
    PermissionDecisionRepository,
    ReportRepository,
    SessionMetricsSnapshotRepository,
    SessionRepository,
    SessionTemplateRepository,
    TaskExecutionRepository,
    TaskRepository,
    ToolCallRepository,
    UserRepository,
    WorkingDirectoryArchiveRepository,
)

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["run_every_query"]


def _summary(value: object) -> str:
    """Return a short description of what a query returned."""
    if is_list(value):
        if not value:
            return "[] (0 rows)"
        first = _summary(value[0])
        return f"{len(value)} row{'s' if len(value) != 1 else ''}, first: {first}"
    if isinstance(value, EntityModel):
        label = next(
            (
                str(getattr(value, name))
                for name in ("username", "name", "title", "tool_name", "hook_type", "status")
                if getattr(value, name, None) is not None
            ),
            "",
        )
        if isinstance(value, MessageModel):
            label = f"#{value.sequence_number} {value.message_type}"
        return f"{type(value).__name__}({label})"
    if is_mapping(value):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return _short(value)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, Decimal):
        return f"{value:f}"
    return repr(value) if isinstance(value, str) else str(value)


async def run_every_query(session: AsyncSession) -> list[tuple[str, str]]:
    """Run each specialized repository method once on the seeded data; return (call, summary)."""
    results: list[tuple[str, str]] = []

    async def run(call: str, action: Awaitable[object]) -> Any:
        value = await action
        results.append((call, _summary(value)))
        return value

    sessions = SessionRepository(session)
    users = UserRepository(session)
    messages = MessageRepository(session)
    tool_calls = ToolCallRepository(session)

    finished = await sessions.get_all(
        limit=1, filters=[col(SessionModel.status).in_(list(FINISHED_SESSION_STATUSES))]
    )
    sample = finished[0] if finished else (await sessions.get_all(limit=1))[0]
    user = await users.get(sample.user_id)

    await run("SessionRepository.get_by_user(user)", sessions.get_by_user(user.id, limit=10))
    await run("SessionRepository.get_active_sessions(user)", sessions.get_active_sessions(user.id))
    await run("SessionRepository.count_active_sessions(user)", sessions.count_active_sessions(user.id))
    await run("SessionRepository.get_by_status('completed')", sessions.get_by_status(SessionStatus.COMPLETED))
    cutoff = (sample.completed_at or sample.created_at) + timedelta(days=1)
    await run(
        f"SessionRepository.get_completed_before({cutoff:%Y-%m-%d})",
        sessions.get_completed_before(cutoff, limit=100),
    )
    await run(
        "SessionRepository.update_metrics(session, total_messages=...)",
        sessions.update_metrics(sample.id, total_messages=sample.total_messages + 1),
    )
    await run(
        "SessionRepository.add_usage(session, api_input_tokens=1200, total_cost_usd=0.0036)",
        sessions.add_usage(sample.id, api_input_tokens=1200, total_cost_usd=Decimal("0.0036")),
    )

    await run(f"UserRepository.get_by_email({user.email.upper()!r})", users.get_by_email(user.email.upper()))
    await run(f"UserRepository.get_by_username({user.username!r})", users.get_by_username(user.username))
    await run("UserRepository.update_last_login(user)", users.update_last_login(user.id))
    await run(f"UserRepository.email_exists({user.email!r})", users.email_exists(user.email))
    await run("UserRepository.username_exists('nobody')", users.username_exists("nobody"))

    await run("MessageRepository.get_by_session(session)", messages.get_by_session(sample.id))
    await run(
        "MessageRepository.get_next_sequence_number(session)", messages.get_next_sequence_number(sample.id)
    )
    await run("MessageRepository.get_result_message(session)", messages.get_result_message(sample.id))
    await run(
        "MessageRepository.append(session, message_type='user', ...)",
        messages.append(sample.id, message_type=MessageType.USER, content={"text": "One more question"}),
    )

    call = (await tool_calls.get_all(limit=1))[0]
    await run(
        f"ToolCallRepository.get_by_tool_use_id({call.tool_use_id!r})",
        tool_calls.get_by_tool_use_id(call.tool_use_id),
    )
    await run("ToolCallRepository.get_pending_for_permission()", tool_calls.get_pending_for_permission())
    await run(
        "ToolCallRepository.update_status(call, 'success')",
        tool_calls.update_status(call.id, ToolCallStatus.SUCCESS),
    )
    await run("ToolCallRepository.get_statistics_by_tool()", tool_calls.get_statistics_by_tool())

    tasks = TaskRepository(session)
    task = (await tasks.get_all(limit=1))[0]
    await run("TaskRepository.get_scheduled_tasks()", tasks.get_scheduled_tasks())
    await run(f"TaskRepository.get_by_tags({task.tags[:1]!r})", tasks.get_by_tags(task.tags[:1]))
    await run(
        "TaskExecutionRepository.get_execution_stats(task)",
        TaskExecutionRepository(session).get_execution_stats(task.id),
    )

    reports = ReportRepository(session)
    report = (await reports.get_all(limit=1))[0]
    text = str(report.content.get("text", ""))
    await run(f"ReportRepository.search_content({text!r})", reports.search_content(text))

    await run("MCPServerRepository.list_by_user(user)", MCPServerRepository(session).list_by_user(user.id))

    templates = SessionTemplateRepository(session)
    template = (await templates.get_all(limit=1))[0]
    await run(
        f"SessionTemplateRepository.search_by_tags({template.tags[:1]!r})",
        templates.search_by_tags(template.tags[:1]),
    )
    await run(
        "SessionTemplateRepository.update_usage_stats(template)", templates.update_usage_stats(template.id)
    )

    hooks = HookExecutionRepository(session)
    hook = (await hooks.get_all(limit=1, filters=[col(HookExecutionModel.tool_use_id).is_not(None)]))[0]
    await run(
        f"HookExecutionRepository.get_by_tool_use_id({hook.tool_use_id!r})",
        hooks.get_by_tool_use_id(hook.tool_use_id or ""),
    )

    await run(
        "PermissionDecisionRepository.count_by_decision(session, 'allow')",
        PermissionDecisionRepository(session).count_by_decision(
            hook.session_id, PermissionDecisionType.ALLOW
        ),
    )

    archives = WorkingDirectoryArchiveRepository(session)
    await run("WorkingDirectoryArchiveRepository.get_pending_archives()", archives.get_pending_archives())
    await run("WorkingDirectoryArchiveRepository.claim_pending(limit=1)", archives.claim_pending(limit=1))

    snapshots = SessionMetricsSnapshotRepository(session)
    snapshot = (await snapshots.get_all(limit=1))[0]
    start, end = snapshot.created_at - timedelta(days=1), snapshot.created_at + timedelta(days=1)
    await run(
        "SessionMetricsSnapshotRepository.get_snapshots_in_range(session, ±1 day)",
        snapshots.get_snapshots_in_range(snapshot.session_id, start, end),
    )

    await run("SessionRepository.soft_delete(session)", sessions.soft_delete(sample.id))
    return results
