"""The service's Alembic environment: its own tables and version table, next to datalayer's.

``datalayer migrate`` manages datalayer's tables (version table ``datalayer_alembic_version``);
this environment manages the service's (Alembic's default ``alembic_version``). Upgrade
datalayer first, the service second; downgrade in the opposite order.
"""

from __future__ import annotations

import asyncio
import warnings

from alembic import context
from shop_models import metadata
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from datalayer.database import resolve_url
from datalayer.migrate import exclude_datalayer_tables, render_item


def do_run_migrations(connection: Connection) -> None:
    """Run the service's migrations on an open connection."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # Autogenerate must neither drop nor recreate datalayer's tables.
        include_name=exclude_datalayer_tables,
        # Generated scripts import the SQLModel/datalayer column types they use.
        render_item=render_item,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction(), warnings.catch_warnings():
        # Reflecting the foreign key's target (datalayer's users table) on SQLite skips its
        # lower(email) expression index, with a warning; the index is datalayer's, not ours.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        context.run_migrations()


async def run_async_migrations() -> None:
    """Connect to the same database as datalayer ($DATALAYER_DATABASE_URL) and migrate."""
    engine = create_async_engine(resolve_url(None), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


asyncio.run(run_async_migrations())
