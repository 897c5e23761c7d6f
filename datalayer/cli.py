"""The ``datalayer`` command: ``migrate``, ``seed``, ``stats``, ``demo`` and ``purge``.

The database is ``--database-url`` (accepted before or after the command), else
``$DATALAYER_DATABASE_URL``, else the embedded SQLite file ``./datalayer.db``. Expected
failures (a bad URL, an unreachable or missing database, an unknown revision, a missing
schema) print one line on stderr, with a hint where one helps, and exit with status 1;
``migrate check`` exits 1 when the database does not match the models. ``seed`` and ``demo``
need the ``factories`` extra (polyfactory).

Only argparse is imported up front: SQLAlchemy, the models, Alembic and rich are imported
inside the command that needs them, so ``datalayer --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from datalayer.seed_sizes import SeedSizes

if TYPE_CHECKING:
    from datetime import timedelta

    from rich.console import Console
    from sqlalchemy.engine import URL

    from datalayer.errors import DataLayerError

__all__ = ["build_parser", "main"]

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int | None]]


# -- command line ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``datalayer`` command."""
    parser = argparse.ArgumentParser(
        prog="datalayer",
        description="Manage a datalayer database: migrations, sample data, statistics, a demo.",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    _add_database_url(parser, default=None)
    # Subcommands accept --database-url too; SUPPRESS keeps an absent one from hiding the
    # value given before the subcommand.
    url_option = argparse.ArgumentParser(add_help=False)
    _add_database_url(url_option, default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    migrate = commands.add_parser(
        "migrate",
        parents=[url_option],
        help="schema migrations (Alembic): upgrade, downgrade, current, history, check",
        description="Without a subcommand: upgrade to head.",
    )
    migrate.set_defaults(handler=_upgrade, revision="head")
    steps = migrate.add_subparsers(dest="migrate_command", metavar="SUBCOMMAND")
    upgrade = steps.add_parser("upgrade", parents=[url_option], help="upgrade to REV (default: head)")
    upgrade.add_argument("revision", nargs="?", default="head", metavar="REV", help="head, an id, or +N")
    upgrade.set_defaults(handler=_upgrade)
    downgrade = steps.add_parser("downgrade", parents=[url_option], help="downgrade to REV")
    downgrade.add_argument("revision", metavar="REV", help="an id, base (no datalayer table), or -N")
    downgrade.set_defaults(handler=_downgrade)
    steps.add_parser("current", parents=[url_option], help="print the database's revision").set_defaults(
        handler=_current
    )
    steps.add_parser("history", parents=[url_option], help="list the migration scripts").set_defaults(
        handler=_history
    )
    steps.add_parser(
        "check", parents=[url_option], help="exit 1 listing the differences if the schema is not the models'"
    ).set_defaults(handler=_check)

    seed = commands.add_parser(
        "seed", parents=[url_option], help="insert realistic sample data made by the factories"
    )
    defaults = SeedSizes()
    for name in SeedSizes.field_names():
        seed.add_argument(
            "--" + name.replace("_", "-"),
            type=_non_negative,
            default=getattr(defaults, name),
            metavar="N",
            help=f"default: {getattr(defaults, name)}",
        )
    seed.add_argument("--seed", type=int, default=None, help="factory seed (same seed, same data)")
    seed.add_argument(
        "--batch-size",
        type=_positive,
        default=100,
        metavar="N",
        help="sessions per transaction (default: 100)",
    )
    seed.set_defaults(handler=_seed)

    stats = commands.add_parser(
        "stats", parents=[url_option], help="row counts per table and tool-call statistics"
    )
    stats.set_defaults(handler=_stats)

    demo = commands.add_parser(
        "demo",
        parents=[url_option],
        help="migrate, seed a small data set and run every specialized repository query",
    )
    demo.add_argument("--seed", type=int, default=None, help="factory seed (default: random)")
    demo.set_defaults(handler=_demo)

    purge = commands.add_parser(
        "purge", parents=[url_option], help="hard-delete soft-deleted rows older than an age, in batches"
    )
    purge.add_argument("--older-than", required=True, type=_age, metavar="AGE", help="e.g. 30d, 12h, 2w")
    # Table names are checked by datalayer.purge.table_models (importing the models here
    # would make --help slow).
    purge.add_argument("--table", action="append", help="repeatable; default: every soft-deletable table")
    purge.add_argument(
        "--batch-size",
        type=_positive,
        default=None,
        metavar="N",
        help="rows per transaction (default: datalayer.purge.DEFAULT_BATCH_SIZE)",
    )
    purge.add_argument("--dry-run", action="store_true", help="print the counts, delete nothing")
    purge.set_defaults(handler=_purge)
    return parser


def _age(text: str) -> timedelta:
    from datalayer.purge import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


class _VersionAction(argparse.Action):
    """``--version``: reads the installed metadata only when asked (it costs an import)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from datalayer import DISTRIBUTION, __version__

        print(f"datalayer {__version__} ({DISTRIBUTION})")
        parser.exit()


def _add_database_url(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=default,
        help="database URL (default: $DATALAYER_DATABASE_URL, else sqlite+aiosqlite:///./datalayer.db)",
    )


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
    handler: Handler = args.handler
    import asyncio

    try:
        status = asyncio.run(_run(handler, args))
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except ImportError as exc:
        _fail(str(exc))
        return EXIT_ERROR
    except Exception as exc:
        from datalayer.errors import classify

        error = classify(exc)
        if error is None:
            raise
        _fail(describe(error))
        return EXIT_ERROR
    return status or 0


async def _run(handler: Handler, args: argparse.Namespace) -> int | None:
    import asyncio
    import gc

    try:
        return await handler(args)
    finally:
        # A driver connection that failed to open is only released when collected; collect it
        # while the loop still runs, so its worker thread does not report to a closed loop.
        gc.collect()
        await asyncio.sleep(0)


def _fail(message: str) -> None:
    """Print one line on stderr (plain print: rich would wrap a long message)."""
    line = " ".join(message.split())
    print(f"datalayer: error: {line}", file=sys.stderr)


# -- errors: one line, and what to do about it -------------------------------------------------

_MISSING_DATABASE = "3D000"  # invalid_catalog_name
_BAD_LOGIN = ("28000", "28P01")  # invalid_authorization_specification, invalid_password


def describe(error: DataLayerError) -> str:
    """Return the one-line message for an error: its class, its text and a hint for that class."""
    from datalayer.errors import DatabaseUnavailableError, InvalidDataError

    message = f"{type(error).__name__}: {error}"
    state = _sqlstate(error)
    if state == _MISSING_DATABASE:
        return message + " (the database does not exist: create it, e.g. `createdb NAME`, or fix the URL)"
    if state in _BAD_LOGIN:
        return message + " (the server refused this user or password: fix them in the URL)"
    if isinstance(error, DatabaseUnavailableError) and _caused_by(error, ConnectionRefusedError):
        return message + " (nothing accepts connections there: is the server running on that host and port?)"
    if isinstance(error, InvalidDataError) and error.field == "revision":
        return message + " (`datalayer migrate history` lists the revisions)"
    return message


def _sqlstate(error: BaseException) -> str | None:
    """Return the first PostgreSQL SQLSTATE found on the error or the exceptions that caused it."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return None
        for attribute in ("sqlstate", "pgcode"):
            code = getattr(seen, attribute, None)
            if isinstance(code, str):
                return code
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return None


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


# -- migrate ----------------------------------------------------------------------------------


def _url(args: argparse.Namespace) -> URL:
    from datalayer.database import resolve_url

    return resolve_url(args.database_url)  # a bad URL fails here, before Alembic runs


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _revision(revision: str | None, head: str | None) -> str:
    """Return a revision as Alembic prints it: ``base``, ``0001`` or ``0001 (head)``."""
    if revision is None:
        return "base"
    return f"{revision} (head)" if revision == head else revision


async def _upgrade(args: argparse.Namespace) -> None:
    import asyncio

    from datalayer import migrate

    url = _url(args)
    before = await asyncio.to_thread(migrate.current, url)
    await asyncio.to_thread(migrate.upgrade, url, args.revision)
    after = await asyncio.to_thread(migrate.current, url)  # what the database says, not the request
    head = migrate.head()
    if after == before:
        print(f"{_shown(url)} is already at {_revision(after, head)}: nothing to upgrade.")
    else:
        print(f"Upgraded {_shown(url)} from {_revision(before, head)} to {_revision(after, head)}.")


async def _downgrade(args: argparse.Namespace) -> None:
    import asyncio

    from datalayer import migrate

    url = _url(args)
    before = await asyncio.to_thread(migrate.current, url)
    if before is not None:  # at base (or no SQLite file yet): nothing to run, nothing to create
        await asyncio.to_thread(migrate.downgrade, url, args.revision)
    after = await asyncio.to_thread(migrate.current, url)
    head = migrate.head()
    if after == before:
        print(f"{_shown(url)} is already at {_revision(after, head)}: nothing to downgrade.")
    else:
        print(f"Downgraded {_shown(url)} from {_revision(before, head)} to {_revision(after, head)}.")


async def _current(args: argparse.Namespace) -> None:
    import asyncio

    from datalayer import migrate

    revision = await asyncio.to_thread(migrate.current, _url(args))
    print(_revision(revision, migrate.head()))


async def _history(args: argparse.Namespace) -> None:
    from datalayer import migrate

    for item in migrate.history():
        down = item.down_revision or "<base>"
        head = " (head)" if item.is_head else ""
        print(f"{down} -> {item.revision}{head}, {item.message}")


async def _check(args: argparse.Namespace) -> int | None:
    import asyncio

    from datalayer import migrate

    url = _url(args)
    head = migrate.head()
    revision = await asyncio.to_thread(migrate.current, url)
    if revision != head:
        print(
            f"{_shown(url)} is at {_revision(revision, head)}, the scripts' head is {head}: "
            "run `datalayer migrate upgrade`."
        )
        return EXIT_ERROR
    found = await asyncio.to_thread(migrate.differences, url)
    if found:
        print(f"{_shown(url)} is at {_revision(revision, head)} but does not match the models:")
        for difference in found:
            print(f"  {format_difference(difference)}")
        return EXIT_ERROR
    print(f"{_shown(url)} is at {_revision(revision, head)} and matches the models.")
    return None


def format_difference(difference: Any) -> str:
    """Return one of Alembic's autogenerate differences as a short line, e.g. ``remove_column users.x``."""
    entries: Sequence[Any] = difference
    if isinstance(difference, list):  # the modify_* operations of one column come grouped
        return "; ".join(format_difference(item) for item in entries)
    operation, *rest = entries
    if operation in ("add_column", "remove_column"):
        _, table, column = rest
        return f"{operation} {table}.{column.name}"
    if operation.startswith("modify_"):
        _, table, column, _, old, new = rest
        return f"{operation} {table}.{column}: {old!r} -> {new!r}"
    target = rest[-1] if rest else None
    name = getattr(target, "name", None)
    table = getattr(getattr(target, "table", None), "name", None)
    if name is not None and table is not None:
        return f"{operation} {name} on {table}"
    if name is not None:
        return f"{operation} {name}"
    return " ".join(str(item) for item in difference)


async def _require_schema(url: URL) -> None:
    """Fail with what to run when the database is missing or not at the scripts' head."""
    import asyncio

    from datalayer.migrate import require_head

    await asyncio.to_thread(require_head, url)


# -- seed, stats, demo ----------------------------------------------------------------------------


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


async def _seed(args: argparse.Namespace) -> None:
    import random

    from datalayer.database import Database
    from datalayer.seeding import seed_database

    url = _url(args)
    await _require_schema(url)
    console = _console()
    sizes = SeedSizes(**{name: getattr(args, name) for name in SeedSizes.field_names()})
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    async with Database(url) as db:
        counts = await seed_database(db, sizes, seed=seed, batch_size=args.batch_size, console=console)
    console.print(f"Seeded with seed {seed}.", soft_wrap=True)
    _print_counts(console, "Rows created", counts)


async def _stats(args: argparse.Namespace) -> None:
    from rich.table import Table

    from datalayer.database import Database
    from datalayer.models import ALL_MODELS
    from datalayer.repositories import Repository, ToolCallRepository
    from datalayer.seeding import table_name

    url = _url(args)
    await _require_schema(url)
    console = _console()
    async with Database(url) as db, db.session(read_only=True) as session:
        counts = {
            table_name(model): await Repository(model, session).count(include_deleted=True)
            for model in ALL_MODELS
        }
        statistics = await ToolCallRepository(session).get_statistics_by_tool()
    console.print(f"Database: {_shown(url)}", soft_wrap=True)
    _print_counts(console, "Rows per table", counts)
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


def _print_counts(console: Console, title: str, counts: dict[str, int]) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, number in counts.items():
        table.add_row(name, str(number))
    table.add_row("[bold]total[/bold]", f"[bold]{sum(counts.values())}[/bold]")
    console.print(table)


async def _purge(args: argparse.Namespace) -> None:
    from datalayer.database import Database
    from datalayer.purge import DEFAULT_BATCH_SIZE, purge_with_progress, table_models

    batch_size = args.batch_size if args.batch_size is not None else DEFAULT_BATCH_SIZE
    async with Database(args.database_url) as db:
        models = table_models(args.table)
        await purge_with_progress(
            db, models, args.older_than, batch_size=batch_size, dry_run=args.dry_run, console=_console()
        )


async def _demo(args: argparse.Namespace) -> None:
    import asyncio
    import random

    from rich.text import Text

    from datalayer.database import Database
    from datalayer.demo import run_every_query
    from datalayer.migrate import upgrade
    from datalayer.seeding import DEMO_SIZES, seed_database

    console = _console()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    async with Database(args.database_url) as db:
        shown_url = _shown(db.url)
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
