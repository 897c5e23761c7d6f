"""Seeding: a coherent sample data set made by the factories, inserted in batches."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from datalayer.database import Database
from datalayer.errors import DataLayerError
from datalayer.models import (
    ALL_MODELS,
    FINISHED_SESSION_STATUSES,
    EntityModel,
    MessageType,
    PermissionDecisionType,
)
from datalayer.repositories import Repository

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["DEMO_SIZES", "SeedSizes", "seed_database", "table_name"]


def table_name(model: type[EntityModel]) -> str:
    """Return the name of a model's table."""
    name: str = sa.inspect(model).tables[0].name
    return name


@dataclass(frozen=True)
class SeedSizes:
    """How many rows ``seed`` creates (children are per parent)."""

    users: int = 50
    sessions: int = 500
    messages_per_session: int = 6
    tool_calls_per_session: int = 3
    tasks: int = 50
    executions_per_task: int = 4
    reports: int = 50
    templates: int = 20
    mcp_servers: int = 20


DEMO_SIZES = SeedSizes(
    users=5,
    sessions=20,
    messages_per_session=6,
    tool_calls_per_session=3,
    tasks=6,
    executions_per_task=3,
    reports=6,
    templates=6,
    mcp_servers=6,
)


async def seed_database(
    db: Database,
    sizes: SeedSizes,
    *,
    seed: int,
    batch_size: int = 1000,
    show_progress: bool = True,
    console: Console | None = None,
) -> dict[str, int]:
    """Insert a coherent data set made by the factories; return the rows created per table.

    Sessions and everything they own are inserted ``batch_size`` sessions per unit of work
    (one ``create_many`` per table and batch, committed per batch). The progress bar goes to
    ``console`` (rich's default console when None).
    """
    import datalayer.factories as f
    from datalayer.factories.base import RNG, later

    f.seed_factories(seed)
    counts = {table_name(model): 0 for model in ALL_MODELS}

    async def insert(session: AsyncSession, model: type[EntityModel], rows: list[dict[str, Any]]) -> None:
        if rows:
            await Repository(model, session).create_many(rows)
            counts[table_name(model)] += len(rows)

    progress = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
    )
    with progress:
        users_bar = progress.add_task("users", total=sizes.users)
        sessions_bar = progress.add_task("sessions", total=sizes.sessions)
        other_bar = progress.add_task("other", total=sizes.tasks + sizes.reports + sizes.templates)

        user_ids: list[UUID] = []
        for start in range(0, sizes.users, batch_size):
            rows = f.UserFactory.rows(min(batch_size, sizes.users - start))
            async with db.session() as session:
                await insert(session, f.UserFactory.__model__, rows)
            user_ids.extend(row["id"] for row in rows)
            progress.advance(users_bar, len(rows))
        if not user_ids and (sizes.sessions or sizes.tasks or sizes.reports or sizes.templates):
            raise DataLayerError(
                "cannot seed sessions, tasks, reports or templates without users (--users 0)"
            )

        session_ids: list[UUID] = []
        for start in range(0, sizes.sessions, batch_size):
            size = min(batch_size, sizes.sessions - start)
            batch = _session_batch(f, RNG, later, user_ids, size, sizes)
            async with db.session() as session:
                for model, rows in batch:
                    await insert(session, model, rows)
            session_ids.extend(row["id"] for row in batch[0][1])
            progress.advance(sessions_bar, size)

        async with db.session() as session:
            tasks = [f.TaskFactory.process_kwargs(user_id=RNG.choice(user_ids)) for _ in range(sizes.tasks)]
            await insert(session, f.TaskFactory.__model__, tasks)
            executions = [
                f.TaskExecutionFactory.process_kwargs(
                    task_id=task["id"],
                    session_id=RNG.choice(session_ids) if session_ids and RNG.random() < 0.5 else None,
                    created_at=later(task["created_at"], 86400),
                )
                for task in tasks
                for _ in range(sizes.executions_per_task)
            ]
            await insert(session, f.TaskExecutionFactory.__model__, executions)
            progress.advance(other_bar, sizes.tasks)
            reports = [
                f.ReportFactory.process_kwargs(
                    user_id=RNG.choice(user_ids),
                    session_id=RNG.choice(session_ids) if session_ids and RNG.random() < 0.5 else None,
                )
                for _ in range(sizes.reports)
            ]
            await insert(session, f.ReportFactory.__model__, reports)
            progress.advance(other_bar, sizes.reports)
            templates = [
                f.SessionTemplateFactory.process_kwargs(user_id=RNG.choice(user_ids))
                for _ in range(sizes.templates)
            ]
            await insert(session, f.SessionTemplateFactory.__model__, templates)
            progress.advance(other_bar, sizes.templates)
            servers = [
                # About a third are global servers (no owner).
                f.MCPServerFactory.process_kwargs(
                    user_id=RNG.choice(user_ids) if user_ids and RNG.random() < 0.7 else None
                )
                for _ in range(sizes.mcp_servers)
            ]
            await insert(session, f.MCPServerFactory.__model__, servers)
    return counts


def _session_batch(
    f: Any, rng: random.Random, later: Any, user_ids: list[UUID], size: int, sizes: SeedSizes
) -> list[tuple[type[EntityModel], list[dict[str, Any]]]]:
    """Return the rows of ``size`` sessions and of everything they own, parents first."""
    sessions: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []
    hooks: list[dict[str, Any]] = []
    archives: list[dict[str, Any]] = []
    snapshots: list[dict[str, Any]] = []
    for _ in range(size):
        owner = f.SessionFactory.process_kwargs(user_id=rng.choice(user_ids))
        sessions.append(owner)
        started = owner["created_at"]
        finished = owner["status"] in FINISHED_SESSION_STATUSES
        own_messages: list[dict[str, Any]] = []
        for number in range(1, sizes.messages_per_session + 1):
            extra: dict[str, Any] = {}
            if finished and number == sizes.messages_per_session and number > 1:
                extra["message_type"] = MessageType.RESULT
            own_messages.append(
                f.MessageFactory.process_kwargs(
                    session_id=owner["id"],
                    sequence_number=number,
                    created_at=started + timedelta(seconds=20 * number),
                    **extra,
                )
            )
        messages.extend(own_messages)
        assistant = [m["id"] for m in own_messages if m["message_type"] == MessageType.ASSISTANT]
        own_calls = [
            f.ToolCallFactory.process_kwargs(
                session_id=owner["id"],
                message_id=rng.choice(assistant) if assistant else None,
                created_at=later(started, 600),
            )
            for _ in range(sizes.tool_calls_per_session)
        ]
        tool_calls.extend(own_calls)
        for call in own_calls[:1]:
            decision = call["permission_decision"] or PermissionDecisionType.ALLOW
            decisions.append(
                f.PermissionDecisionFactory.process_kwargs(
                    session_id=owner["id"],
                    tool_call_id=call["id"],
                    tool_use_id=call["tool_use_id"],
                    tool_name=call["tool_name"],
                    decision=decision,
                    created_at=call["created_at"],
                )
            )
            hooks.append(
                f.HookExecutionFactory.process_kwargs(
                    session_id=owner["id"],
                    hook_type="PreToolUse",
                    tool_use_id=call["tool_use_id"],
                    created_at=call["created_at"],
                )
            )
        snapshots.append(f.SessionMetricsSnapshotFactory.process_kwargs(session_id=owner["id"]))
        if finished:
            archives.append(
                f.WorkingDirectoryArchiveFactory.process_kwargs(
                    session_id=owner["id"], created_at=owner["completed_at"]
                )
            )
    return [
        (f.SessionFactory.__model__, sessions),
        (f.MessageFactory.__model__, messages),
        (f.ToolCallFactory.__model__, tool_calls),
        (f.PermissionDecisionFactory.__model__, decisions),
        (f.HookExecutionFactory.__model__, hooks),
        (f.WorkingDirectoryArchiveFactory.__model__, archives),
        (f.SessionMetricsSnapshotFactory.__model__, snapshots),
    ]
