"""A service's own tables and Alembic scripts next to datalayer's (docs/own-tables.md), on both backends.

The test copies ``examples/own_tables`` (a service with an invoices table whose foreign key
points at datalayer's users) into a temporary directory and runs the service's own Alembic
there against the same database as ``datalayer migrate``: ``alembic revision --autogenerate``
as the command a developer types (a subprocess), the other steps through ``alembic.command``
in this process (the same env.py, without an interpreter start per step).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import col, select

from datalayer import Database, UserModel, UserRepository, migrate
from datalayer.cli import main
from datalayer.errors import ConstraintViolationError
from datalayer.models import metadata

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "own_tables"
OURS = set(metadata.tables)


def load_shop_models() -> ModuleType:
    """Import the example service's models (its own registry and metadata) into this process."""
    spec = importlib.util.spec_from_file_location("shop_models", EXAMPLE / "shop_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # SQLModel resolves the annotations through sys.modules
    spec.loader.exec_module(module)
    return module


shop = load_shop_models()


def alembic_cli(service: Path, url: str, *args: str) -> str:
    """Run the service's ``alembic`` command in its directory against ``url``; return its output."""
    env = {**os.environ, "DATALAYER_DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", *args], cwd=service, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def service_config(service: Path) -> Config:
    """Return the service's Alembic configuration (its pyproject.toml)."""
    return Config(toml_file=str(service / "pyproject.toml"))


async def tables_and_versions(url: str) -> tuple[set[str], dict[str, list[str]]]:
    """Return the database's tables and the revisions in each Alembic version table."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            names = set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
            versions: dict[str, list[str]] = {}
            for table in (migrate.VERSION_TABLE, migrate.LEGACY_VERSION_TABLE):
                if table in names:
                    version = sa.table(table, sa.column("version_num", sa.String))
                    rows = await conn.execute(sa.select(version.c.version_num))
                    versions[table] = sorted(rows.scalars())
            return names, versions
    finally:
        await engine.dispose()


def state(url: str) -> tuple[set[str], dict[str, list[str]]]:
    """Return tables_and_versions() from synchronous code."""
    return asyncio.run(tables_and_versions(url))


async def add_user_with_invoice(url: str, email: str) -> Any:
    """Create a user through our repository and an invoice through the service's model."""
    async with Database(url) as db, db.session() as s:
        user = await UserRepository(s).create(email=email, username=email.split("@")[0])
        s.add(shop.InvoiceModel(user_id=user.id, title=f"invoice of {email}", total_cents=1250))
        return user.id


async def invoices_with_users(url: str) -> list[tuple[str, str]]:
    """Return (invoice title, user email) pairs, joined across the two sets of tables."""
    async with Database(url) as db, db.session(read_only=True) as s:
        joined = select(shop.InvoiceModel, UserModel).join(
            UserModel, col(shop.InvoiceModel.user_id) == col(UserModel.id)
        )
        return sorted((invoice.title, user.email) for invoice, user in (await s.exec(joined)).all())


def test_service_tables_and_migrations_live_next_to_ours(
    empty_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = tmp_path / "service"
    shutil.copytree(EXAMPLE, service, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("DATALAYER_DATABASE_URL", empty_url)  # the service's env.py reads it too
    config = service_config(service)
    migrate.upgrade(empty_url)

    # Autogenerate in the service's env sees only the service's table, and imports its types.
    alembic_cli(service, empty_url, "revision", "--autogenerate", "-m", "shop tables")
    [script] = (service / "shop_migrations" / "versions").glob("*.py")
    text = script.read_text()
    assert re.findall(r"create_table\(\s*['\"](\w+)", text) == ["shop_invoices"]
    assert "drop_table" not in text.split("def downgrade")[0]
    assert "alembic_version" not in text
    assert "from sqlmodel.sql.sqltypes import AutoString" in text  # no NameError: sqlmodel
    assert re.search(r"ForeignKeyConstraint\(\s*\[['\"]user_id['\"]\],\s*\[['\"]users\.id['\"]\]", text)
    shop_revision = re.search(r"^revision: str = ['\"](\w+)['\"]", text, re.MULTILINE)
    assert shop_revision is not None

    # Upgrade the service: its table and version table join ours, ours untouched.
    command.upgrade(config, "head")
    tables, versions = state(empty_url)
    assert tables == OURS | {"shop_invoices", migrate.VERSION_TABLE, migrate.LEGACY_VERSION_TABLE}
    assert versions == {
        migrate.VERSION_TABLE: [migrate.head()],
        migrate.LEGACY_VERSION_TABLE: [shop_revision.group(1)],
    }
    command.check(config)  # raises when autogenerate would change anything
    assert migrate.differences(empty_url) == []  # our check ignores the service's table
    assert main(["migrate", "check", "--database-url", empty_url]) == 0
    assert main(["migrate", "upgrade", "--database-url", empty_url]) == 0
    assert f"already at {migrate.head()} (head)" in capsys.readouterr().out

    # Our repositories work with the service's rows referencing ours (and cascading from them).
    ada = asyncio.run(add_user_with_invoice(empty_url, "ada@example.com"))
    asyncio.run(add_user_with_invoice(empty_url, "bob@example.com"))
    assert asyncio.run(invoices_with_users(empty_url)) == [
        ("invoice of ada@example.com", "ada@example.com"),
        ("invoice of bob@example.com", "bob@example.com"),
    ]

    async def delete_ada() -> bool:
        async with Database(empty_url) as db, db.session() as s:
            return await UserRepository(s).delete(ada)

    assert asyncio.run(delete_ada())
    assert asyncio.run(invoices_with_users(empty_url)) == [("invoice of bob@example.com", "bob@example.com")]

    # Downgrading ours under the service's table is refused before anything changes.
    before = state(empty_url)
    with pytest.raises(ConstraintViolationError, match=r"shop_invoices\.user_id -> users"):
        migrate.downgrade(empty_url, "base")
    steps_to_base = f"-{len(migrate.history())}"  # relative, reaching base
    assert main(["migrate", "downgrade", steps_to_base, "--database-url", empty_url]) == 1
    assert "downgrade those tables' own migrations first" in capsys.readouterr().err
    assert state(empty_url) == before
    assert asyncio.run(invoices_with_users(empty_url)) == [("invoice of bob@example.com", "bob@example.com")]

    # Downgrading the service leaves ours (schema, revision, rows) intact; upgrading again works.
    command.downgrade(config, "base")
    tables, versions = state(empty_url)
    assert tables == OURS | {migrate.VERSION_TABLE, migrate.LEGACY_VERSION_TABLE}
    assert versions == {migrate.VERSION_TABLE: [migrate.head()], migrate.LEGACY_VERSION_TABLE: []}
    assert migrate.current(empty_url) == migrate.head()
    assert migrate.differences(empty_url) == []

    async def emails() -> list[str]:
        async with Database(empty_url) as db, db.session() as s:
            return [user.email for user in await UserRepository(s).get_all()]

    assert asyncio.run(emails()) == ["bob@example.com"]
    command.upgrade(config, "head")
    assert "shop_invoices" in state(empty_url)[0]

    # In the documented order (service first, then ours) everything goes back to empty.
    command.downgrade(config, "base")
    assert main(["migrate", "downgrade", "base", "--database-url", empty_url]) == 0
    tables, versions = state(empty_url)
    assert tables == {migrate.VERSION_TABLE, migrate.LEGACY_VERSION_TABLE}
    assert versions == {migrate.VERSION_TABLE: [], migrate.LEGACY_VERSION_TABLE: []}
