"""Run datalayer's Alembic migrations from Python: upgrade, downgrade, current revision.

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
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
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
from datalayer.errors import DatabaseUnavailableError, DataLayerError, InvalidDataError, translate_errors

__all__ = [
    "MigrationsNotFoundError",
    "alembic_config",
    "current",
    "current_async",
    "differences",
    "downgrade",
    "downgrade_async",
    "head",
    "migrations_dir",
    "upgrade",
    "upgrade_async",
]

_PACKAGE_DIR = Path(__file__).resolve().parent
_INITIAL_REVISION = "0001"


class MigrationsNotFoundError(DataLayerError):
    """The Alembic scripts are not installed alongside the package."""


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
    """Upgrade the database to ``revision`` (default: the newest); returns None."""
    _refuse_running_loop()
    with _translated(revision):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str | URL | None = None, revision: str = "base") -> None:
    """Downgrade the database to ``revision`` (default: ``base``, an empty schema); returns None."""
    _refuse_running_loop()
    with _translated(revision):
        command.downgrade(alembic_config(url), revision)


def current(url: str | URL | None = None) -> str | None:
    """Return the database's current revision id, or None when it has none (never migrated).

    A SQLite file that does not exist is reported as None without creating it.
    """
    config = alembic_config(url)
    if _missing_sqlite_file(config.attributes["url"]):
        return None
    found: list[str] = []

    def collect(rev: Any, context: MigrationContext) -> list[Any]:
        found.extend(context.get_current_heads())
        return []

    with _translated(None):
        _run_env(config, collect)
    return ",".join(sorted(found)) or None


async def upgrade_async(url: str | URL | None = None, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` from async code, on the running event loop; returns None."""
    await _run_async(url, revision, lambda config: command.upgrade(config, revision))


async def downgrade_async(url: str | URL | None = None, revision: str = "base") -> None:
    """Downgrade the database to ``revision`` from async code, on the running event loop; returns None."""
    await _run_async(url, revision, lambda config: command.downgrade(config, revision))


async def current_async(url: str | URL | None = None) -> str | None:
    """Return the database's current revision id (None when never migrated), from async code."""
    if _missing_sqlite_file(alembic_config(url).attributes["url"]):
        return None

    def heads(config: Config) -> str | None:
        found = MigrationContext.configure(config.attributes["connection"]).get_current_heads()
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


def head() -> str | None:
    """Return the newest revision id of the scripts (what ``upgrade()`` goes to)."""
    with _translated(None):
        return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def differences(url: str | URL | None = None) -> list[Any]:
    """Return Alembic's autogenerate differences between the database and the models (empty: in sync).

    SQLite cannot reflect expression indexes (``lower(email)``): they are left out of the
    comparison there, without the two warnings SQLAlchemy and Alembic emit about it.
    """
    found: list[Any] = []

    def compare(rev: Any, context: MigrationContext) -> list[Any]:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based")
            found.extend(compare_metadata(context, context.opts["target_metadata"]))
        return []

    with _translated(None):
        _run_env(alembic_config(url), compare)
    return found


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
