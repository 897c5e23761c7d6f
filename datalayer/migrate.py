"""Run datalayer's Alembic migrations from Python: upgrade, downgrade, current, history, check.

Regenerate the initial revision after changing the models (source checkout; it starts a
throwaway PostgreSQL, autogenerates ``migrations/versions/0001_initial_schema.py`` against it,
then upgrades an empty SQLite file and an empty PostgreSQL database and checks that
autogenerate finds no difference on either)::

    .venv/bin/python -m datalayer.migrate regenerate

``upgrade``, ``downgrade`` and ``current`` are synchronous: ``migrations/env.py`` runs its own
event loop with ``asyncio.run``. From async code (a service's startup, an async test fixture)
use ``await upgrade_async(url)``, ``downgrade_async`` and ``current_async``: they run Alembic
on an async connection of the caller's event loop (``AsyncConnection.run_sync``).

Expected failures raise :mod:`datalayer.errors` types with a one-line message: an unknown
revision is an ``InvalidDataError`` (``field="revision"``), a database that cannot be reached
or opened is a ``DatabaseUnavailableError``.

Living next to a service's own migrations (docs/own-tables.md): datalayer records its
revision in its own version table, ``datalayer_alembic_version`` (:data:`VERSION_TABLE`), so
a service's Alembic keeps ``alembic_version`` to itself; datalayer's autogenerate and
``check`` look only at datalayer's tables. A database migrated by datalayer 0.1.0 has its
revision in ``alembic_version``: the next ``upgrade``/``downgrade`` moves it to
``datalayer_alembic_version`` (dropping ``alembic_version`` when nothing else is left in it);
``current`` reads it where it is without writing. For the service's own ``env.py`` we ship
:func:`exclude_datalayer_tables` (an ``include_name`` hook) and :func:`render_item` (generated
scripts import the column types they use).

Where the scripts are: in the source checkout (and an editable install) the top-level
``migrations/`` directory next to the ``datalayer`` package. A wheel carries the same
directory as ``datalayer/_migrations`` (mapped at build time); that copy is preferred when
present, so an unrelated top-level ``migrations`` package in site-packages is never used.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from datalayer.database import resolve_url
from datalayer.errors import (
    ConstraintViolationError,
    DatabaseUnavailableError,
    DataLayerError,
    InvalidDataError,
    translate_errors,
)

__all__ = [
    "LEGACY_VERSION_TABLE",
    "VERSION_TABLE",
    "MigrationsNotFoundError",
    "Revision",
    "SchemaNotReadyError",
    "alembic_config",
    "current",
    "current_async",
    "datalayer_tables",
    "differences",
    "downgrade",
    "downgrade_async",
    "exclude_datalayer_tables",
    "head",
    "history",
    "migrations_dir",
    "render_item",
    "require_head",
    "upgrade",
    "upgrade_async",
]

_PACKAGE_DIR = Path(__file__).resolve().parent
_INITIAL_REVISION = "0001"

#: The table holding datalayer's revision (a service's own Alembic keeps ``alembic_version``).
VERSION_TABLE = "datalayer_alembic_version"
#: Where datalayer 0.1.0 recorded its revision; adopted by the next upgrade or downgrade.
LEGACY_VERSION_TABLE = "alembic_version"


class MigrationsNotFoundError(DataLayerError):
    """The Alembic scripts are not installed alongside the package."""


class SchemaNotReadyError(DataLayerError):
    """The database is missing, not migrated, or not at the scripts' head (the message says what to run)."""


@dataclass(frozen=True)
class Revision:
    """One of datalayer's migration scripts, as ``history()`` lists it."""

    revision: str
    down_revision: str | None
    message: str
    is_head: bool


def migrations_dir() -> Path:
    """Return the directory holding ``env.py`` and ``versions/``."""
    bundled = _PACKAGE_DIR / "_migrations"
    if (bundled / "env.py").is_file():
        return bundled
    checkout = _PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "migrations" / "env.py").is_file():
        return checkout / "migrations"
    raise MigrationsNotFoundError(
        f"datalayer's migration scripts are not installed (looked in {bundled} and {checkout / 'migrations'})"
    )


def alembic_config(url: str | URL | None = None) -> Config:
    """Return an Alembic ``Config`` for datalayer's scripts and the resolved database URL.

    Built in code (no ini or toml file needed), so it works from any working directory.
    The URL travels in ``config.attributes`` rather than ``sqlalchemy.url`` because the
    ini parser would interpolate ``%`` signs in passwords.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["url"] = resolve_url(url)
    return config


def upgrade(url: str | URL | None = None, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the newest; ``+1`` is relative); returns None."""
    _refuse_running_loop()
    if revision == "base" or revision.startswith("-"):
        raise InvalidDataError.for_field("revision", revision, "upgrade goes forward only: use downgrade")
    with _translated(revision):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str | URL | None = None, revision: str = "base") -> None:
    """Downgrade the database to ``revision`` (``base``: no datalayer table; ``-1``: one step); returns None.

    Refused with ``ConstraintViolationError``, before anything changes, when the downgrade
    would drop every datalayer table while other tables (a service's own) still reference them.
    """
    _refuse_running_loop()
    if revision in ("head", "heads") or revision.startswith("+"):
        raise InvalidDataError.for_field("revision", revision, "downgrade goes backward only: use upgrade")
    config = alembic_config(url)
    config.attributes["downgrade_to"] = revision
    with _translated(revision):
        command.downgrade(config, revision)


def current(url: str | URL | None = None) -> str | None:
    """Return the database's current revision id, or None when it has none (never migrated).

    Reads only: a SQLite file that does not exist is reported as None without creating it,
    and a revision still recorded in the legacy ``alembic_version`` table is reported as is.
    """
    config = alembic_config(url)
    if _missing_sqlite_file(config.attributes["url"]):
        return None
    config.attributes["read_only"] = True
    found: list[str] = []

    def collect(rev: Any, context: MigrationContext) -> list[Any]:
        found.extend(context.get_current_heads() or legacy_revisions(_connection(context), context))
        return []

    with _translated(None):
        _run_env(config, collect)
    return ",".join(sorted(found)) or None


async def upgrade_async(url: str | URL | None = None, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` from async code, on the running event loop; returns None."""
    if revision == "base" or revision.startswith("-"):
        raise InvalidDataError.for_field("revision", revision, "upgrade goes forward only: use downgrade")
    await _run_async(url, revision, lambda config: command.upgrade(config, revision))


async def downgrade_async(url: str | URL | None = None, revision: str = "base") -> None:
    """Downgrade the database to ``revision`` from async code, on the running event loop; returns None."""
    if revision in ("head", "heads") or revision.startswith("+"):
        raise InvalidDataError.for_field("revision", revision, "downgrade goes backward only: use upgrade")

    def run(config: Config) -> None:
        config.attributes["downgrade_to"] = revision  # env.py refuses to drop referenced tables
        command.downgrade(config, revision)

    await _run_async(url, revision, run)


async def current_async(url: str | URL | None = None) -> str | None:
    """Return the database's current revision id (None when never migrated), from async code."""
    if _missing_sqlite_file(alembic_config(url).attributes["url"]):
        return None

    def heads(config: Config) -> str | None:
        connection: Connection = config.attributes["connection"]
        script = ScriptDirectory.from_config(config)
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "script": script}
        )
        found = context.get_current_heads() or legacy_revisions(connection, context)
        return ",".join(sorted(found)) or None

    return await _run_async(url, None, heads)


_R = TypeVar("_R")
#: Seconds to wait for a PostgreSQL server, or for a SQLite writer's lock (as migrations/env.py).
_CONNECT_TIMEOUT = 10.0
_SQLITE_BUSY_TIMEOUT = 30.0


async def _run_async(url: str | URL | None, revision: str | None, fn: Callable[[Config], _R]) -> _R:
    """Return ``fn(config)`` run inside ``AsyncConnection.run_sync`` with that connection in ``config``.

    ``migrations/env.py`` uses a connection it finds in ``config.attributes`` as is, so Alembic
    runs on this event loop's connection instead of starting a loop of its own; its blocking
    calls go through SQLAlchemy's greenlet bridge, so the loop keeps serving other tasks.
    """
    config = alembic_config(url)
    resolved: URL = config.attributes["url"]
    timeout = _CONNECT_TIMEOUT if resolved.get_backend_name() == "postgresql" else _SQLITE_BUSY_TIMEOUT
    engine = create_async_engine(resolved, poolclass=NullPool, connect_args={"timeout": timeout})

    def with_connection(connection: Connection) -> _R:
        config.attributes["connection"] = connection
        return fn(config)

    try:
        with _translated(revision):
            connection = await _connect(engine.connect(), resolved)
            try:
                return await connection.run_sync(with_connection)
            finally:
                await connection.close()
    finally:
        await engine.dispose()


async def _connect(connection: AsyncConnection, url: URL) -> AsyncConnection:
    """Return the started connection, or raise ``DatabaseUnavailableError`` saying why it failed."""
    try:
        return await connection.start()
    except Exception as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        shown = url.render_as_string(hide_password=True)
        raise DatabaseUnavailableError(
            f"cannot connect to {shown}: {detail[0] if detail else type(exc).__name__}"
        ) from exc


def require_head(url: str | URL | None = None) -> str | None:
    """Return the database's revision when it is the scripts' head; else raise SchemaNotReadyError.

    Reads only, and never creates a SQLite file: a missing one is reported as such. Useful at a
    service's start, before serving requests against a schema it does not know.
    """
    resolved = resolve_url(url)
    shown = resolved.render_as_string(hide_password=True)
    if _missing_sqlite_file(resolved):
        raise SchemaNotReadyError(
            f"no database file at {resolved.database} (nothing was created): "
            "run `datalayer migrate upgrade` to create it, or fix the URL"
        )
    revision = current(resolved)
    newest = head()
    if revision is None:
        raise SchemaNotReadyError(f"{shown} has no datalayer schema: run `datalayer migrate upgrade` first")
    if revision != newest:
        raise SchemaNotReadyError(
            f"{shown} is at revision {revision}, this version of datalayer needs {newest}: "
            "run `datalayer migrate upgrade` first"
        )
    return revision


def head() -> str | None:
    """Return the newest revision id of the scripts (what ``upgrade()`` goes to)."""
    with _translated(None):
        return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def history() -> list[Revision]:
    """Return datalayer's migration scripts, newest first (reads no database)."""
    with _translated(None):
        script = ScriptDirectory.from_config(alembic_config(None))
        return [
            Revision(
                revision=item.revision,
                down_revision=_one(item.down_revision),
                message=(item.doc or "").strip(),
                is_head=item.is_head,
            )
            for item in script.walk_revisions()
        ]


def differences(url: str | URL | None = None) -> list[Any]:
    """Return Alembic's autogenerate differences between the database and the models (empty: in sync).

    Only datalayer's tables are compared: a service's own tables in the same database are
    not differences. SQLite cannot reflect expression indexes (``lower(email)``): they are
    left out of the comparison there, without the two warnings SQLAlchemy and Alembic emit.
    A SQLite file that does not exist is not created (every model table is then missing).
    """
    config = alembic_config(url)
    found: list[Any] = []
    resolved: URL = config.attributes["url"]
    if _missing_sqlite_file(resolved):
        directory = Path(resolved.database or "").expanduser().absolute().parent
        if not directory.is_dir():
            raise DatabaseUnavailableError(f"cannot open {resolved.database}: {directory} does not exist")
        from datalayer.models import metadata

        return [("add_table", table) for table in metadata.sorted_tables]
    config.attributes["read_only"] = True

    def compare(rev: Any, context: MigrationContext) -> list[Any]:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based")
            found.extend(compare_metadata(context, context.opts["target_metadata"]))
        return []

    with _translated(None):
        _run_env(config, compare)
    return found


# -- helpers for a service's own Alembic environment (docs/own-tables.md) -----------------------


def datalayer_tables() -> frozenset[str]:
    """Return the names of datalayer's tables, its version table included."""
    from datalayer.models import metadata

    return frozenset({*metadata.tables, VERSION_TABLE})


def exclude_datalayer_tables(name: str | None, type_: str, parent_names: Any) -> bool:
    """Return False for datalayer's tables (and its version table): an ``include_name`` hook.

    Pass it as ``context.configure(include_name=exclude_datalayer_tables)`` in a service's
    own ``env.py``, so that autogenerate there neither drops nor recreates datalayer's tables.
    """
    return not (type_ == "table" and name in datalayer_tables())


def only_datalayer_tables(name: str | None, type_: str, parent_names: Any) -> bool:
    """Return True only for datalayer's tables: the ``include_name`` hook of datalayer's own env."""
    from datalayer.models import metadata

    return type_ != "table" or name in metadata.tables


#: Modules whose column types generated scripts import by name (Alembic would write a dotted
#: path such as ``sqlmodel.sql.sqltypes.AutoString`` without importing anything).
_IMPORTED_TYPE_MODULES = ("datalayer.types", "sqlmodel.sql.sqltypes")


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Return the source text of a column type that needs an import, or False for the default.

    An Alembic ``render_item`` hook: generated scripts then import SQLModel's and datalayer's
    column types (no ``NameError: name 'sqlmodel' is not defined``) and pass ``mypy --strict``.
    """
    if type_ != "type" or type(obj).__module__ not in _IMPORTED_TYPE_MODULES:
        return False
    from sqlmodel.sql.sqltypes import AutoString

    from datalayer.types import JSONDict, Money, StringList

    name = type(obj).__name__
    autogen_context.imports.add(f"from {type(obj).__module__} import {name}")
    if isinstance(obj, AutoString):
        length = getattr(obj.impl, "length", None)
        return "AutoString()" if length is None else f"AutoString(length={length!r})"
    if isinstance(obj, (JSONDict, StringList, Money)):
        # Their constructors take no arguments; repr() would show the impl's.
        return f"{name}()"
    return repr(obj)


# -- what env.py calls ----------------------------------------------------------------------------------


def legacy_revisions(connection: Connection, context: MigrationContext) -> list[str]:
    """Return datalayer's revisions recorded in the legacy ``alembic_version`` table (reads only)."""
    if not sa.inspect(connection).has_table(LEGACY_VERSION_TABLE):
        return []
    table = sa.table(LEGACY_VERSION_TABLE, sa.column("version_num", sa.String))
    recorded = connection.execute(sa.select(table.c.version_num)).scalars().all()
    return [rev for rev in recorded if _is_ours(rev, context.script)]


def adopt_legacy_version(connection: Connection, script: ScriptDirectory) -> list[str]:
    """Move datalayer's revision from ``alembic_version`` to ``datalayer_alembic_version``.

    Returns the revisions moved (none when datalayer's table exists already or the legacy one
    holds only other scripts' revisions). ``alembic_version`` is dropped when left empty.
    """
    inspector = sa.inspect(connection)
    if inspector.has_table(VERSION_TABLE) or not inspector.has_table(LEGACY_VERSION_TABLE):
        return []
    legacy = sa.table(LEGACY_VERSION_TABLE, sa.column("version_num", sa.String))
    recorded = connection.execute(sa.select(legacy.c.version_num)).scalars().all()
    ours = [rev for rev in recorded if _is_ours(rev, script)]
    if not ours:
        return []
    # The same shape as the table Alembic creates itself.
    version = sa.Table(
        VERSION_TABLE,
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    version.create(connection)
    connection.execute(version.insert(), [{"version_num": rev} for rev in ours])
    connection.execute(legacy.delete().where(legacy.c.version_num.in_(ours)))
    if len(ours) == len(recorded):
        emptied = sa.Table(LEGACY_VERSION_TABLE, sa.MetaData(), sa.Column("version_num", sa.String(32)))
        emptied.drop(connection)
    return ours


def refuse_dangling_references(connection: Connection, context: MigrationContext, target: str) -> None:
    """Raise ConstraintViolationError when downgrading to ``target`` would drop tables others reference.

    Checked before a downgrade to ``base`` (or ``-N`` reaching it), where every datalayer
    table goes: a service's tables that reference them must be downgraded first.
    """
    heads = context.get_current_heads()
    if not heads or not _reaches_base(context, heads, target):
        return
    from datalayer.models import metadata

    ours = set(metadata.tables)
    inspector = sa.inspect(connection)
    references = sorted(
        f"{table}.{','.join(fk['constrained_columns'])} -> {fk['referred_table']}"
        for table in inspector.get_table_names()
        if table not in ours
        for fk in inspector.get_foreign_keys(table)
        if fk["referred_table"] in ours
    )
    if references:
        raise ConstraintViolationError(
            f"cannot downgrade datalayer's schema to base: other tables reference it "
            f"({'; '.join(references)}); downgrade those tables' own migrations first"
        )


def _reaches_base(context: MigrationContext, heads: tuple[str, ...], target: str) -> bool:
    if target == "base":
        return True
    if not target.startswith("-") or not target[1:].isdigit():
        return False
    script = context.script
    if script is None:
        return False
    steps = int(target[1:])
    revision: str | None = heads[0]
    for _ in range(steps):
        if revision is None:
            break
        revision = _one(script.get_revision(revision).down_revision)
    return revision is None


def _is_ours(revision: str, script: ScriptDirectory | None) -> bool:
    if script is None:
        return False
    try:
        script.get_revision(revision)  # raises for a revision that is not one of our scripts
    except (CommandError, RevisionError):
        return False
    return True


def _one(revision: str | tuple[str, ...] | list[str] | None) -> str | None:
    if revision is None or isinstance(revision, str):
        return revision
    return ",".join(revision)


def _connection(context: MigrationContext) -> Connection:
    connection = context.connection
    if connection is None:  # only in offline (--sql) mode, which these functions never use
        raise RuntimeError("no database connection")
    return connection


def _run_env(config: Config, fn: Any) -> None:
    _refuse_running_loop()
    script = ScriptDirectory.from_config(config)
    with EnvironmentContext(config, script, fn=fn, dont_mutate=True):
        script.run_env()


def _missing_sqlite_file(url: URL) -> bool:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return False
    return not Path(url.database).exists() and "mode=memory" not in str(url.query)


def _refuse_running_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "datalayer.migrate.upgrade/downgrade/current run their own event loop; from async code use "
        "`await upgrade_async(url)` (downgrade_async, current_async) or `asyncio.to_thread`"
    )


@contextmanager
def _translated(revision: str | None) -> Generator[None]:
    """Re-raise Alembic and driver errors as one-line datalayer errors."""
    try:
        with translate_errors():
            yield
    except (CommandError, RevisionError) as exc:
        message = _first_line(exc)
        raise InvalidDataError(message, field="revision", value=revision) from exc


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _regenerate() -> None:
    """Autogenerate the initial revision against a throwaway PostgreSQL and verify it."""
    import tempfile

    from datalayer.testing import TemporaryPostgres

    versions = migrations_dir() / "versions"
    for old in versions.glob(f"{_INITIAL_REVISION}_*.py"):
        old.unlink()
    with TemporaryPostgres(database="datalayer_regenerate") as server:
        # The checkout's [tool.alembic] also runs the post-write hook (ruff format).
        config = Config(toml_file=str(_PACKAGE_DIR.parent / "pyproject.toml"))
        config.attributes["url"] = resolve_url(server.url)
        command.revision(config, message="initial schema", autogenerate=True, rev_id=_INITIAL_REVISION)
        upgrade(server.url)
        pg_diff = differences(server.url)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite+aiosqlite:///{tmp}/regenerate.db"
        upgrade(sqlite_url)
        sqlite_diff = differences(sqlite_url)
    for name, diff in (("postgresql", pg_diff), ("sqlite", sqlite_diff)):
        print(f"{name}: {diff or 'no differences'}")
    if pg_diff or sqlite_diff:
        raise SystemExit(1)


if __name__ == "__main__":
    if sys.argv[1:] == ["regenerate"]:
        _regenerate()
    else:
        raise SystemExit("usage: python -m datalayer.migrate regenerate")
