"""Alembic environment for datalayer: async engine, datalayer's metadata, batch mode on SQLite.

Normally run through :mod:`datalayer.migrate` (and the ``datalayer migrate`` command); from the
source checkout plain ``alembic`` works too, configured by ``[tool.alembic]`` in pyproject.toml.

The database URL is, in order: ``config.attributes["url"]`` (set by ``datalayer.migrate``), the
``sqlalchemy.url`` option (``alembic -x``-free override), ``$DATALAYER_DATABASE_URL``, the embedded
SQLite default. A caller may instead hand over an open synchronous connection in
``config.attributes["connection"]`` (e.g. from ``AsyncConnection.run_sync``); it is used as is.

datalayer's revision lives in its own version table (``datalayer_alembic_version``) and
autogenerate compares only datalayer's tables, so a service's own tables and Alembic scripts
can share the database (docs/own-tables.md). Unless ``config.attributes["read_only"]`` is set,
a revision recorded by datalayer 0.1.0 in ``alembic_version`` is moved to datalayer's table first.
"""

from __future__ import annotations

import asyncio
import logging
from logging.config import fileConfig
from pathlib import Path
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import create_async_engine

from datalayer.database import resolve_url
from datalayer.errors import DatabaseUnavailableError
from datalayer.migrate import (
    VERSION_TABLE,
    adopt_legacy_version,
    only_datalayer_tables,
    refuse_dangling_references,
    render_item,
)
from datalayer.models import metadata

#: Seconds to wait for a PostgreSQL server before giving up (asyncpg's default is 60).
CONNECT_TIMEOUT = 10.0
#: Seconds a SQLite migration waits for another writer's lock.
SQLITE_BUSY_TIMEOUT = 30.0

config = context.config

# pyproject.toml-only configuration has no ini file, yet Alembic still names a default one.
if config.config_file_name is not None and Path(config.config_file_name).is_file():
    fileConfig(config.config_file_name)
elif config.cmd_opts is not None and not logging.getLogger().handlers:
    # Run from the ``alembic`` command: show its progress lines as the ini template would.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)-5.5s [%(name)s] %(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)

target_metadata = metadata


def _url() -> URL:
    given = config.attributes.get("url")
    # With pyproject.toml only, the ini section does not exist and get_main_option would raise.
    if given is None and config.file_config.has_section(config.config_ini_section):
        given = config.get_main_option("sqlalchemy.url")
    return resolve_url(given)


def _configure_options(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "compare_type": True,
        # SQLite cannot ALTER most things: later revisions' changes go through table copies.
        "render_as_batch": dialect_name == "sqlite",
        "render_item": render_item,
        "version_table": VERSION_TABLE,
        # A service's own tables in the same database are not ours to compare (or drop).
        "include_name": only_datalayer_tables,
    }


def run_migrations_offline() -> None:
    """Emit the migration SQL for the configured URL instead of running it (``--sql``)."""
    url = _url()
    context.configure(
        url=url.render_as_string(hide_password=False),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_configure_options(url.get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on an open synchronous connection."""
    context.configure(connection=connection, **_configure_options(connection.dialect.name))
    if not config.attributes.get("read_only"):
        # Committed before the migrations start (a caller's own transaction stays the caller's).
        with connection.begin_nested() if connection.in_transaction() else connection.begin():
            adopt_legacy_version(connection, context.script)
            target = config.attributes.get("downgrade_to")
            if target is not None:
                refuse_dangling_references(connection, context.get_context(), target)
    with context.begin_transaction():
        context.run_migrations()


def _check_sqlite_directory(url: URL) -> None:
    """Fail before connecting when a SQLite file's directory is missing (nothing could be created)."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return
    directory = Path(database).expanduser().absolute().parent
    if not directory.is_dir():
        raise DatabaseUnavailableError(f"cannot open {database}: directory {directory} does not exist")


async def run_async_migrations() -> None:
    """Connect with the async driver and run the migrations inside ``run_sync``."""
    url = _url()
    _check_sqlite_directory(url)
    timeout = CONNECT_TIMEOUT if url.get_backend_name() == "postgresql" else SQLITE_BUSY_TIMEOUT
    engine = create_async_engine(url, poolclass=pool.NullPool, connect_args={"timeout": timeout})
    try:
        try:
            connection = await engine.connect()
        except Exception as exc:
            # Any failure before the first statement (refused, unknown host or database,
            # bad credentials, unopenable file) means the database is not usable from here.
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            shown = url.render_as_string(hide_password=True)
            raise DatabaseUnavailableError(
                f"cannot connect to {shown}: {detail[0] if detail else type(exc).__name__}"
            ) from exc
        try:
            await connection.run_sync(do_run_migrations)
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Run the migrations on the caller's connection, or on a new async engine."""
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
