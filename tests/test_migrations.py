"""Migrations: ``upgrade head`` builds exactly the models' schema, ``downgrade base`` removes it.

Each test migrates its own empty database: a new SQLite file, or a new PostgreSQL database
created on the session's throwaway server through an admin connection to ``postgres``.
``datalayer.migrate`` is synchronous (``env.py`` runs its own event loop), so the async tests
call it through ``asyncio.to_thread``, as the module's docstring tells async callers to.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from datalayer import Database, migrate
from datalayer.errors import ConflictError, DatabaseUnavailableError, InvalidDataError
from datalayer.models import SessionModel, UserModel, metadata
from datalayer.repositories import Repository, SoftDeleteRepository
from datalayer.testing import free_port

MODEL_TABLES = set(metadata.tables)


async def inspect_schema(url: str) -> dict[str, Any]:
    """Return a comparable description of a database's schema (tables, columns, indexes, keys)."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_describe)
    finally:
        await engine.dispose()


def _describe(conn: Connection) -> dict[str, Any]:
    with warnings.catch_warnings():
        # SQLite's unique-constraint reflection reads the index list, which skips (and warns
        # about) the lower(email) expression index; _index_ddl covers that index instead.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        return _reflect(conn)


def _reflect(conn: Connection) -> dict[str, Any]:
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    described: dict[str, Any] = {"tables": tables, "indexes": _index_ddl(conn)}
    for table in sorted(tables & MODEL_TABLES):
        described[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (
                    fk["name"] or "",
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    (fk["options"].get("ondelete") or "NO ACTION").upper(),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "uniques": sorted(
                (uc["name"] or "", tuple(uc["column_names"]))
                for uc in inspector.get_unique_constraints(table)
            ),
            "checks": sorted(
                (ck["name"] or "", ck["sqltext"]) for ck in inspector.get_check_constraints(table)
            ),
        }
    return described


def _index_ddl(conn: Connection) -> dict[str, str]:
    """Return index name -> its CREATE INDEX text (expression and partial indexes included).

    The catalogs are read directly because SQLite's reflection skips expression indexes.
    """
    if conn.dialect.name == "sqlite":
        rows = conn.execute(
            sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        )
    else:
        constraint_backed = sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        rows = conn.execute(constraint_backed)
    return {name: ddl for name, ddl in rows}


def model_indexes() -> dict[str, sa.Index]:
    """Return every index the models declare, by name."""
    return {str(ix.name): ix for table in metadata.tables.values() for ix in table.indexes}


def model_foreign_keys(table: str) -> set[tuple[str, str, str]]:
    """Return (column, referred table, ON DELETE rule) for each foreign key of a model table."""
    return {
        (fk.parent.name, fk.column.table.name, (fk.ondelete or "NO ACTION").upper())
        for fk in metadata.tables[table].foreign_keys
    }


async def test_upgrade_head_gives_exactly_the_models_schema(db: Database, empty_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_url)

    assert await asyncio.to_thread(migrate.current, empty_url) == migrate.head() == "0002"
    assert await asyncio.to_thread(migrate.differences, empty_url) == []
    migrated = await inspect_schema(empty_url)
    # The same description as the schema that metadata.create_all built for the other tests.
    created = await inspect_schema(db.url.render_as_string(hide_password=False))
    assert migrated["tables"] == MODEL_TABLES | {migrate.VERSION_TABLE}
    assert created["tables"] == MODEL_TABLES
    for table in sorted(MODEL_TABLES):
        assert migrated[table] == created[table], table
    assert migrated["indexes"] == created["indexes"]

    declared = model_indexes()
    assert set(migrated["indexes"]) == set(declared)
    for name, index in declared.items():
        ddl = migrated["indexes"][name]
        partial = index.dialect_options[db.backend].get("where") is not None
        assert (" WHERE " in ddl.upper()) == partial, ddl
        assert ("UNIQUE" in ddl.upper()) == bool(index.unique), ddl
    assert re.search(r"lower\(\(?email", migrated["indexes"]["uq_users_lower_email_active"])
    assert any(" WHERE " in ddl for ddl in migrated["indexes"].values())
    if db.backend == "postgresql":
        for gin in ("ix_tasks_tags", "ix_session_templates_tags", "ix_reports_content"):
            assert "USING gin" in migrated["indexes"][gin]
        assert "jsonb_path_ops" in migrated["indexes"]["ix_reports_content"]

    for table in sorted(MODEL_TABLES):
        reflected = {(cols[0], referred, rule) for _, cols, referred, rule in migrated[table]["fks"]}
        assert reflected == model_foreign_keys(table), table
    assert ("session_id", "sessions", "CASCADE") in model_foreign_keys("messages")
    assert ("message_id", "messages", "SET NULL") in model_foreign_keys("tool_calls")
    assert ("uq_messages_session_id_sequence_number", ("session_id", "sequence_number")) in migrated[
        "messages"
    ]["uniques"]
    check_names = {name for name, _ in migrated["sessions"]["checks"]}
    assert {"ck_sessions_session_mode", "ck_sessions_session_status"} <= check_names


async def test_migrated_schema_enforces_its_constraints(empty_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_url)
    async with Database(empty_url) as db:
        async with db.session() as s:
            ada = await Repository(UserModel, s).create(email="Ada@Example.com", username="ada")
            session = await Repository(SessionModel, s).create(user_id=ada.id, status="active")
        with pytest.raises(ConflictError):  # the lower(email) partial unique index
            async with db.session() as s:
                await Repository(UserModel, s).create(email="ada@example.COM", username="ada2")
        async with db.session() as s:
            users = SoftDeleteRepository(UserModel, s)
            assert await users.soft_delete(ada.id)
            # Only live rows are unique: the soft-deleted address can be taken again.
            await users.create(email="ada@example.com", username="ada")
        async with db.session() as s:
            assert await Repository(UserModel, s).delete(ada.id)  # ON DELETE CASCADE to sessions
        async with db.session() as s:
            assert await Repository(SessionModel, s).get_by_id(session.id, include_deleted=True) is None


async def test_downgrade_base_removes_everything_and_upgrade_works_again(empty_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_url)
    async with Database(empty_url) as db, db.session() as s:
        await Repository(UserModel, s).create(email="kept@example.com", username="kept")

    await asyncio.to_thread(migrate.downgrade, empty_url)

    after = await inspect_schema(empty_url)
    assert after["tables"] <= {migrate.VERSION_TABLE}
    assert after["indexes"] == {}
    assert await asyncio.to_thread(migrate.current, empty_url) is None
    if empty_url.startswith("postgresql"):
        engine = create_async_engine(empty_url, poolclass=NullPool)
        async with engine.connect() as conn:
            leftovers = await conn.execute(
                sa.text(
                    "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                    "WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'c') "
                    "AND t.typrelid = 0"
                )
            )
            assert leftovers.all() == []  # no native enum or composite type left behind
        await engine.dispose()

    await asyncio.to_thread(migrate.upgrade, empty_url)
    assert await asyncio.to_thread(migrate.differences, empty_url) == []
    assert await asyncio.to_thread(migrate.current, empty_url) == "0002"


async def test_unknown_revision_is_invalid_data_in_one_line(empty_url: str) -> None:
    with pytest.raises(InvalidDataError) as caught:
        await asyncio.to_thread(migrate.upgrade, empty_url, "no-such-revision")
    assert caught.value.field == "revision"
    assert "no-such-revision" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert (await inspect_schema(empty_url))["tables"] <= {migrate.VERSION_TABLE}

    await asyncio.to_thread(migrate.upgrade, empty_url)
    with pytest.raises(InvalidDataError):
        await asyncio.to_thread(migrate.downgrade, empty_url, "no-such-revision")
    assert await asyncio.to_thread(migrate.current, empty_url) == "0002"


async def test_unreachable_database_is_unavailable_in_one_line(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'x.db'}"
    else:
        url = f"postgresql+asyncpg://postgres:secret-pw@127.0.0.1:{free_port()}/nothing"
    for call in (migrate.upgrade, migrate.downgrade, migrate.differences):
        with pytest.raises(DatabaseUnavailableError) as caught:
            await asyncio.to_thread(call, url)
        message = str(caught.value)
        assert "\n" not in message
        assert "secret-pw" not in message
    assert not (tmp_path / "missing-dir").exists()


async def test_current_of_a_missing_sqlite_file_is_none_without_creating_it(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    assert await asyncio.to_thread(migrate.current, f"sqlite+aiosqlite:///{path}") is None
    assert not path.exists()


async def test_called_inside_an_event_loop_it_says_to_use_a_thread(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="to_thread"):
        migrate.upgrade(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert not (tmp_path / "x.db").exists()


def test_scripts_are_found_and_configured_in_code() -> None:
    config = migrate.alembic_config("sqlite:///somewhere.db")
    assert Path(config.get_main_option("script_location") or "") == migrate.migrations_dir()
    assert (migrate.migrations_dir() / "versions" / "0001_initial_schema.py").is_file()
    assert config.attributes["url"].drivername == "sqlite+aiosqlite"


async def _sql(url: str, *statements: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def _versions(url: str) -> dict[str, list[str]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            names = set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
            found = {}
            for table in sorted(names & {migrate.VERSION_TABLE, migrate.LEGACY_VERSION_TABLE}):
                rows = await conn.execute(sa.text(f"SELECT version_num FROM {table}"))
                found[table] = sorted(rows.scalars())
            return found
    finally:
        await engine.dispose()


async def test_a_database_migrated_by_0_1_0_is_adopted(empty_url: str) -> None:
    """0.1.0 kept its revision in alembic_version: read there, moved by the next upgrade or downgrade."""
    head = migrate.head()
    # What Alembic created for 0.1.0, holding datalayer's revision.
    to_legacy = (
        f"DROP TABLE {migrate.VERSION_TABLE}",
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))",
        f"INSERT INTO alembic_version (version_num) VALUES ('{head}')",
    )
    await asyncio.to_thread(migrate.upgrade, empty_url)
    await _sql(empty_url, *to_legacy)
    assert await _versions(empty_url) == {"alembic_version": [head]}

    assert await asyncio.to_thread(migrate.current, empty_url) == head
    assert await asyncio.to_thread(migrate.differences, empty_url) == []
    assert await _versions(empty_url) == {"alembic_version": [head]}  # reading wrote nothing

    await asyncio.to_thread(migrate.upgrade, empty_url)  # nothing to run, but the revision moves
    assert await _versions(empty_url) == {migrate.VERSION_TABLE: [head]}  # emptied legacy table dropped
    assert (await inspect_schema(empty_url))["tables"] == MODEL_TABLES | {migrate.VERSION_TABLE}

    # A service's revision in the same legacy table stays where it is, for the service's Alembic.
    await _sql(empty_url, *to_legacy, "INSERT INTO alembic_version (version_num) VALUES ('service01')")
    assert await asyncio.to_thread(migrate.current, empty_url) == head
    await asyncio.to_thread(migrate.downgrade, empty_url, "base")
    assert await _versions(empty_url) == {"alembic_version": ["service01"], migrate.VERSION_TABLE: []}
    assert (await inspect_schema(empty_url))["tables"] == {"alembic_version", migrate.VERSION_TABLE}
