"""Seeding: a coherent sample data set made by the factories, inserted in batches."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import sqlalchemy as sa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from datalayer.database import Database
from datalayer.errors import ConflictError, DataLayerError
from datalayer.models import (
    ALL_MODELS,
    FINISHED_SESSION_STATUSES,
    EntityModel,
    MessageType,
    PermissionDecisionType,
    UserModel,
)
from datalayer.repositories import Repository
from datalayer.seed_sizes import DEMO_SIZES, SeedSizes

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["DEMO_SIZES", "SeedSizes", "seed_database", "table_name"]

#: How often the progress display redraws (elapsed time, rate and ETA move between batches too).
REFRESHES_PER_SECOND = 4


def table_name(model: type[EntityModel]) -> str:
    """Return the name of a model's table."""
    name: str = sa.inspect(model).tables[0].name
    return name


async def seed_database(
    db: Database,
    sizes: SeedSizes,
    *,
    seed: int,
    batch_size: int = 100,
    show_progress: bool = True,
    console: Console | None = None,
) -> dict[str, int]:
    """Insert a coherent data set made by the factories; return the rows created per table.

    Sessions and everything they own are inserted ``batch_size`` sessions per unit of work
    (one ``create_many`` per table and batch, committed per batch). The progress bars (rows per
    second, time left) go to ``console`` (rich's default console when None); a bar advances
    after every ``create_many``, not only per batch.

    The same seed makes the same rows, primary keys included, so seeding a database twice with
    one seed is refused with ``ConflictError`` before anything is written (not made idempotent:
    a second run that silently did nothing would hide a mistake, and one that partly matched
    an earlier, different-size run could not be told apart from it).
    """
    import datalayer.factories as f
    from datalayer.factories.base import RNG, later

    f.seed_factories(seed)
    counts = {table_name(model): 0 for model in ALL_MODELS}

    progress = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        RowsPerSecondColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=not show_progress,
        refresh_per_second=REFRESHES_PER_SECOND,
    )

    inserted: dict[Any, int] = {}  # rows inserted per progress bar (its rows/s column)

    async def insert(
        session: AsyncSession,
        model: type[EntityModel],
        rows: list[dict[str, Any]],
        bar: Any = None,
        advance: float = 0,
    ) -> None:
        if rows:
            await Repository(model, session).create_many(rows)
            counts[table_name(model)] += len(rows)
        if bar is not None:
            inserted[bar] = inserted.get(bar, 0) + len(rows)
            progress.update(bar, advance=advance, rows=inserted[bar])

    # Checked before the progress display starts, so a refusal prints only its message.
    first_users = f.UserFactory.rows(min(batch_size, sizes.users))
    if first_users:
        async with db.session() as session:
            await _refuse_seed_used_before(session, first_users[0]["id"], seed)

    with progress:
        users_bar = progress.add_task("users", total=sizes.users, rows=0)
        sessions_bar = progress.add_task("sessions", total=sizes.sessions, rows=0)
        other_bar = progress.add_task("other", total=sizes.tasks + sizes.reports + sizes.templates, rows=0)

        user_ids: list[UUID] = []
        for start in range(0, sizes.users, batch_size):
            rows = first_users if start == 0 else f.UserFactory.rows(min(batch_size, sizes.users - start))
            async with db.session() as session:
                await insert(session, f.UserFactory.__model__, rows, users_bar, len(rows))
            user_ids.extend(row["id"] for row in rows)
        if not user_ids and (sizes.sessions or sizes.tasks or sizes.reports or sizes.templates):
            raise DataLayerError(
                "cannot seed sessions, tasks, reports or templates without users (--users 0)"
            )

        session_ids: list[UUID] = []
        for start in range(0, sizes.sessions, batch_size):
            size = min(batch_size, sizes.sessions - start)
            batch = _session_batch(f, RNG, later, user_ids, size, sizes)
            batch_rows = sum(len(rows) for _, rows in batch)
            async with db.session() as session:
                for model, rows in batch:
                    # The bar moves with each table's insert, in proportion to its rows.
                    await insert(session, model, rows, sessions_bar, size * len(rows) / batch_rows)
            session_ids.extend(row["id"] for row in batch[0][1])
            progress.update(sessions_bar, completed=start + size)  # exact, whatever the float sum was

        async with db.session() as session:
            tasks = [f.TaskFactory.process_kwargs(user_id=RNG.choice(user_ids)) for _ in range(sizes.tasks)]
            await insert(session, f.TaskFactory.__model__, tasks, other_bar)
            executions = [
                f.TaskExecutionFactory.process_kwargs(
                    task_id=task["id"],
                    session_id=RNG.choice(session_ids) if session_ids and RNG.random() < 0.5 else None,
                    created_at=later(task["created_at"], 86400),
                )
                for task in tasks
                for _ in range(sizes.executions_per_task)
            ]
            await insert(session, f.TaskExecutionFactory.__model__, executions, other_bar, sizes.tasks)
            reports = [
                f.ReportFactory.process_kwargs(
                    user_id=RNG.choice(user_ids),
                    session_id=RNG.choice(session_ids) if session_ids and RNG.random() < 0.5 else None,
                )
                for _ in range(sizes.reports)
            ]
            await insert(session, f.ReportFactory.__model__, reports, other_bar, sizes.reports)
            templates = [
                f.SessionTemplateFactory.process_kwargs(user_id=RNG.choice(user_ids))
                for _ in range(sizes.templates)
            ]
            await insert(session, f.SessionTemplateFactory.__model__, templates, other_bar, sizes.templates)
            servers = [
                # About a third are global servers (no owner).
                f.MCPServerFactory.process_kwargs(
                    user_id=RNG.choice(user_ids) if user_ids and RNG.random() < 0.7 else None
                )
                for _ in range(sizes.mcp_servers)
            ]
            await insert(session, f.MCPServerFactory.__model__, servers, other_bar)
    return counts


class RowsPerSecondColumn(ProgressColumn):
    """Rows inserted per second so far, from the task's ``rows`` field."""

    def render(self, task: Task) -> Text:
        """Return the rate as text, e.g. ``5,210 rows/s``."""
        elapsed = task.elapsed
        if not elapsed or not task.fields.get("rows"):
            return Text("- rows/s", style="progress.data.speed")
        return Text(f"{task.fields['rows'] / elapsed:,.0f} rows/s", style="progress.data.speed")


async def _refuse_seed_used_before(session: AsyncSession, first_user_id: UUID, seed: int) -> None:
    """Raise ConflictError when the seed's first user exists already (the database was seeded with it)."""
    if await Repository(UserModel, session).exists(first_user_id, include_deleted=True):
        raise ConflictError(
            f"this database was already seeded with seed {seed} (its first user, {first_user_id}, "
            "exists); nothing was written: pass another --seed, or none for a random one"
        )


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
