"""The ``datalayer`` command: ``migrate``, ``seed``, ``stats`` and ``demo``.

The database is ``--database-url``, else ``$DATALAYER_DATABASE_URL``, else the embedded
SQLite file ``./datalayer.db``. Expected failures (a bad URL, an unreachable database, an
unknown revision, a missing schema) print one line on stderr and exit with status 1;
``seed`` and ``demo`` need the ``factories`` extra (polyfactory).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, fields
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlmodel import col

from datalayer.database import Database, resolve_url
from datalayer.errors import DataLayerError, classify
from datalayer.models import (
    ALL_MODELS,
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
    Repository,
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

__all__ = ["SeedSizes", "build_parser", "main", "seed_database"]

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

console = Console(highlight=False)


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


# -- command line ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``datalayer`` command."""
    parser = argparse.ArgumentParser(
        prog="datalayer",
        description="Manage a datalayer database: migrations, sample data, statistics, a demo.",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=None,
        help="database URL (default: $DATALAYER_DATABASE_URL, else sqlite+aiosqlite:///./datalayer.db)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    migrate = commands.add_parser("migrate", help="upgrade the schema (Alembic)")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.set_defaults(handler=_migrate)

    seed = commands.add_parser("seed", help="insert realistic sample data made by the factories")
    defaults = SeedSizes()
    for field in fields(SeedSizes):
        option = "--" + field.name.replace("_", "-")
        seed.add_argument(
            option,
            type=_non_negative,
            default=getattr(defaults, field.name),
            metavar="N",
            help=f"default: {getattr(defaults, field.name)}",
        )
    seed.add_argument("--seed", type=int, default=None, help="factory seed (same seed, same data)")
    seed.add_argument(
        "--batch-size", type=_positive, default=1000, metavar="N", help="sessions per transaction"
    )
    seed.set_defaults(handler=_seed)

    stats = commands.add_parser("stats", help="row counts per table and tool-call statistics")
    stats.set_defaults(handler=_stats)

    demo = commands.add_parser(
        "demo", help="migrate, seed a small data set and run every specialized repository query"
    )
    demo.add_argument("--seed", type=int, default=None, help="factory seed (default: random)")
    demo.set_defaults(handler=_demo)
    return parser


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status (0 on success)."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], Coroutine[Any, Any, None]] = args.handler
    try:
        asyncio.run(_run(handler, args))
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except ImportError as exc:
        _fail(str(exc))
        return EXIT_ERROR
    except Exception as exc:
        error = classify(exc)
        if error is None:
            raise
        _fail(_describe(error, args.command))
        return EXIT_ERROR
    return 0


async def _run(handler: Callable[[argparse.Namespace], Coroutine[Any, Any, None]], args: Any) -> None:
    try:
        await handler(args)
    finally:
        # A driver connection that failed to open is only released when collected; collect it
        # while the loop still runs, so its worker thread does not report to a closed loop.
        gc.collect()
        await asyncio.sleep(0)


def _fail(message: str) -> None:
    """Print one line on stderr (plain print: rich would wrap a long message)."""
    line = " ".join(message.split())
    print(f"datalayer: error: {line}", file=sys.stderr)


def _describe(error: DataLayerError, command: str) -> str:
    message = f"{type(error).__name__}: {error}"
    text = str(error).lower()
    if command in ("seed", "stats") and ("no such table" in text or "does not exist" in text):
        message += " (the schema is missing: run `datalayer migrate` first)"
    return message


async def _migrate(args: argparse.Namespace) -> None:
    from datalayer.migrate import upgrade

    url = resolve_url(args.database_url)  # a bad URL fails here, before Alembic runs
    await asyncio.to_thread(upgrade, url, args.revision)
    console.print(
        f"Migrated {url.render_as_string(hide_password=True)} to revision {args.revision}.", soft_wrap=True
    )


async def _seed(args: argparse.Namespace) -> None:
    sizes = SeedSizes(**{field.name: getattr(args, field.name) for field in fields(SeedSizes)})
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    async with Database(args.database_url) as db:
        counts = await seed_database(db, sizes, seed=seed, batch_size=args.batch_size)
    console.print(f"Seeded with seed {seed}.", soft_wrap=True)
    _print_counts("Rows created", counts)


async def _stats(args: argparse.Namespace) -> None:
    async with Database(args.database_url) as db, db.session(read_only=True) as session:
        counts = {
            _table(model): await Repository(model, session).count(include_deleted=True)
            for model in ALL_MODELS
        }
        statistics = await ToolCallRepository(session).get_statistics_by_tool()
    console.print(f"Database: {db.url.render_as_string(hide_password=True)}", soft_wrap=True)
    _print_counts("Rows per table", counts)
    table = Table(title="Tool calls by tool (get_statistics_by_tool)")
    for name in ("tool", "calls", "success", "error", "avg duration (ms)"):
        table.add_column(name, justify="left" if name == "tool" else "right")
    for row in statistics:
        average = row["avg_duration_ms"]
        table.add_row(
            row["tool_name"],
            str(row["total_calls"]),
            str(row["success_count"]),
            str(row["error_count"]),
            "-" if average is None else f"{average:.1f}",
        )
    console.print(table)


def _table(model: type[EntityModel]) -> str:
    return str(model.__tablename__)


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, number in counts.items():
        table.add_row(name, str(number))
    table.add_row("[bold]total[/bold]", f"[bold]{sum(counts.values())}[/bold]")
    console.print(table)


# -- seeding ------------------------------------------------------------------------------------


async def seed_database(
    db: Database, sizes: SeedSizes, *, seed: int, batch_size: int = 1000, show_progress: bool = True
) -> dict[str, int]:
    """Insert a coherent data set made by the factories; return the rows created per table.

    Sessions and everything they own are inserted ``batch_size`` sessions per unit of work
    (one ``create_many`` per table and batch, committed per batch).
    """
    import factories as f
    from factories.base import RNG, later

    f.seed_factories(seed)
    counts = {_table(model): 0 for model in ALL_MODELS}

    async def insert(session: AsyncSession, model: type[EntityModel], rows: list[dict[str, Any]]) -> None:
        if rows:
            await Repository(model, session).create_many(rows)
            counts[_table(model)] += len(rows)

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
        own_messages = []
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


# -- demo -----------------------------------------------------------------------------------------


async def _demo(args: argparse.Namespace) -> None:
    from datalayer.migrate import upgrade

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    async with Database(args.database_url) as db:
        shown_url = db.url.render_as_string(hide_password=True)
        console.print(f"datalayer demo on {shown_url}", style="bold", soft_wrap=True)
        await asyncio.to_thread(upgrade, db.url, "head")
        console.print("1. Migrated the schema to the newest revision.")
        counts = await seed_database(db, DEMO_SIZES, seed=seed, show_progress=False)
        console.print(f"2. Seeded {sum(counts.values())} rows with factory seed {seed}.", soft_wrap=True)
        console.print("3. Every specialized query of the 13 repositories:")
        async with db.session() as session:
            results = await _run_queries(session)
        for call, summary in results:
            console.print(Text.assemble("   ", (call, "bold cyan")), soft_wrap=True)
            console.print(Text.assemble("     -> ", summary), soft_wrap=True)
        console.print(
            f"Done: {len(results)} queries. The data stays in {shown_url}; try `datalayer stats`.",
            soft_wrap=True,
        )


def _summary(value: object) -> str:
    """Return a short description of what a query returned."""
    if isinstance(value, list):
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
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return _short(value)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, Decimal):
        return f"{value:f}"
    return repr(value) if isinstance(value, str) else str(value)


async def _run_queries(session: AsyncSession) -> list[tuple[str, str]]:
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
