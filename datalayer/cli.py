"""The ``datalayer`` command: ``migrate``, ``seed``, ``stats``, ``demo`` and ``purge``.

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
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import fields
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from datalayer.database import Database, resolve_url
from datalayer.demo import run_every_query
from datalayer.errors import DataLayerError, classify
from datalayer.models import ALL_MODELS
from datalayer.purge import DEFAULT_BATCH_SIZE, PURGEABLE, parse_age, purge_with_progress, table_models
from datalayer.repositories import Repository, ToolCallRepository
from datalayer.seeding import DEMO_SIZES, SeedSizes, seed_database, table_name

__all__ = ["SeedSizes", "build_parser", "main", "seed_database"]

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

console = Console(highlight=False)


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

    purge = commands.add_parser("purge", help="hard-delete soft-deleted rows older than an age, in batches")
    purge.add_argument("--older-than", required=True, type=_age, metavar="AGE", help="e.g. 30d, 12h, 2w")
    purge.add_argument(
        "--table",
        action="append",
        choices=[table_name(m) for m in PURGEABLE],
        help="repeatable; default: all",
    )
    purge.add_argument(
        "--batch-size", type=_positive, default=DEFAULT_BATCH_SIZE, metavar="N", help="rows per transaction"
    )
    purge.add_argument("--dry-run", action="store_true", help="print the counts, delete nothing")
    purge.set_defaults(handler=_purge)
    return parser


def _age(text: str) -> timedelta:
    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


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
        counts = await seed_database(db, sizes, seed=seed, batch_size=args.batch_size, console=console)
    console.print(f"Seeded with seed {seed}.", soft_wrap=True)
    _print_counts("Rows created", counts)


async def _stats(args: argparse.Namespace) -> None:
    async with Database(args.database_url) as db, db.session(read_only=True) as session:
        counts = {
            table_name(model): await Repository(model, session).count(include_deleted=True)
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


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, number in counts.items():
        table.add_row(name, str(number))
    table.add_row("[bold]total[/bold]", f"[bold]{sum(counts.values())}[/bold]")
    console.print(table)


async def _purge(args: argparse.Namespace) -> None:
    async with Database(args.database_url) as db:
        models = table_models(args.table)
        await purge_with_progress(
            db, models, args.older_than, batch_size=args.batch_size, dry_run=args.dry_run, console=console
        )


# -- demo -----------------------------------------------------------------------------------------


async def _demo(args: argparse.Namespace) -> None:
    from datalayer.migrate import upgrade

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    async with Database(args.database_url) as db:
        shown_url = db.url.render_as_string(hide_password=True)
        console.print(f"datalayer demo on {shown_url}", style="bold", soft_wrap=True)
        await asyncio.to_thread(upgrade, db.url, "head")
        console.print("1. Migrated the schema to the newest revision.")
        counts = await seed_database(db, DEMO_SIZES, seed=seed, show_progress=False, console=console)
        console.print(f"2. Seeded {sum(counts.values())} rows with factory seed {seed}.", soft_wrap=True)
        console.print("3. Every specialized query of the 13 repositories:")
        async with db.session() as session:
            results = await run_every_query(session)
        for call, summary in results:
            console.print(Text.assemble("   ", (call, "bold cyan")), soft_wrap=True)
            console.print(Text.assemble("     -> ", summary), soft_wrap=True)
        console.print(
            f"Done: {len(results)} queries. The data stays in {shown_url}; try `datalayer stats`.",
            soft_wrap=True,
        )
