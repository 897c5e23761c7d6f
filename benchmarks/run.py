"""Side-by-side benchmark: datalayer vs hand-written SQLAlchemy ORM, Core, the raw driver,
advanced-alchemy and fastcrud, on a SQLite file (WAL) and a throwaway PostgreSQL.

Every variant runs the same operation on the same tables (100,000 rows each) in one process,
interleaved (variants in a new random order for every operation of every round), and the
median over rounds is reported, with the ratio to hand-written SQLAlchemy ORM using the
same AsyncSession factory. Also: keyset vs offset pagination on a 1,000,000-row PostgreSQL
table, and peak memory of ``stream`` vs ``get_all``/``list``.

    python benchmarks/run.py                 # full run, both backends (about 5-8 minutes)
    python benchmarks/run.py --quick         # fewer rounds and rows, for a smoke run
    python benchmarks/run.py --backend sqlite
    python benchmarks/run.py --scale         # specialized queries at 100,000 vs 1,000,000 rows

Writes ``benchmarks/results/latest.json`` and ``benchmarks/results/ratios.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar, cast
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiosqlite  # noqa: E402
import asyncpg  # type: ignore[import-untyped]  # noqa: E402  # asyncpg ships no type information
import sqlalchemy as sa  # noqa: E402
from advanced_alchemy.filters import LimitOffset, OrderBy  # noqa: E402
from advanced_alchemy.repository import SQLAlchemyAsyncRepository  # noqa: E402
from fastcrud import FastCRUD  # noqa: E402
from pydantic import BaseModel  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy.dialects.postgresql import ARRAY  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine  # noqa: E402
from sqlmodel import col, select  # noqa: E402
from sqlmodel.ext.asyncio.session import AsyncSession  # noqa: E402

from datalayer import Database  # noqa: E402
from datalayer.models import (  # noqa: E402
    SessionModel,
    SessionTemplateModel,
    ToolCallModel,
    UserModel,
)
from datalayer.observability import SLOW_QUERY_LOGGER  # noqa: E402
from datalayer.repositories import (  # noqa: E402
    SessionRepository,
    SessionTemplateRepository,
    ToolCallRepository,
)
from datalayer.testing import TemporaryPostgres  # noqa: E402
from datalayer.types import utc_now, uuid7  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = ("datalayer", "orm", "core", "raw", "advanced-alchemy", "fastcrud")
REFERENCE = "orm"
OPERATIONS = (
    "get by id",
    "list 100 rows (filtered)",
    "count (filtered)",
    "exists",
    "create (single)",
    "create_many 10,000",
    "insert_many 10,000 (ids only)",
    "update by id",
    "soft delete",
    "get_by_user",
    "get_statistics_by_tool",
    "search_by_tags",
)
BULK = "create_many 10,000"
BULK_IDS = "insert_many 10,000 (ids only)"
BULKS = (BULK, BULK_IDS)
#: The issue's targets: datalayer / hand-written ORM (writes), / Core insert (bulk).
WRITE_TARGET = {"create (single)": 0.85, "update by id": 0.85}
CORE_TARGET = {BULK: 1.6, BULK_IDS: 1.25}
STATUSES = ("created", "active", "completed", "failed", "paused")
TOOLS = tuple(f"tool_{n}" for n in range(12))
TAGS = tuple(f"tag{n}" for n in range(24))
T0 = datetime(2025, 1, 1, tzinfo=UTC)

console = Console(width=150)
Call = Callable[[], Awaitable[Any]]
K = TypeVar("K")


@dataclass
class Settings:
    """What to run and how much."""

    rows: int = 100_000
    users: int = 1_000
    rounds: int = 7
    iterations: int = 25
    bulk_rows: int = 10_000
    bulk_rounds: int = 7
    one_by_one_rows: int = 1_000
    keyset_rows: int = 1_000_000
    keyset_offsets: tuple[int, ...] = (0, 10_000, 100_000, 900_000)
    stream_rows: int = 100_000
    backends: tuple[str, ...] = ("sqlite", "postgresql")
    scale: bool = False


@dataclass
class Context:
    """One backend's databases, connections and the keys the operations use."""

    backend: str
    db: Database
    #: The engine of every variant but datalayer's (see ``baseline_engine``).
    baseline: AsyncEngine
    maker: async_sessionmaker[AsyncSession]
    raw: Any
    session_ids: list[UUID]
    deletable: list[UUID]
    user_ids: list[UUID]
    stats_session: UUID
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def dialect(self) -> sa.Dialect:
        """Return the SQLAlchemy dialect (for encoding raw-driver parameters)."""
        return self.db.engine.sync_engine.dialect

    def key(self) -> UUID:
        """Return a random visible session id."""
        return self.rng.choice(self.session_ids)

    def user(self) -> UUID:
        """Return a random user id."""
        return self.rng.choice(self.user_ids)

    def doomed(self) -> UUID:
        """Return a session id never soft-deleted before."""
        return self.deletable.pop()

    async def close(self) -> None:
        """Close the raw connection and both engines."""
        await self.raw.close()
        await self.db.dispose()
        await self.baseline.dispose()


# -- data -----------------------------------------------------------------------------------


def session_row(n: int, user_id: UUID, created: datetime | None = None) -> dict[str, Any]:
    """Return a complete sessions row (every column, as the ORM would write it)."""
    now = created or (T0 + timedelta(seconds=n))
    return {
        "id": uuid7(),
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "user_id": user_id,
        "name": f"session {n}",
        "mode": "interactive",
        "status": STATUSES[n % len(STATUSES)],
        "sdk_options": {"model": "m", "n": n % 7},
        "working_directory": None,
        "completed_at": None,
        "version": 1,
        "total_messages": 0,
        "total_tool_calls": 0,
        "total_cost_usd": Decimal(0),
        "api_input_tokens": 0,
        "api_output_tokens": 0,
        "api_cache_creation_tokens": 0,
        "api_cache_read_tokens": 0,
    }


def new_session_values(user_id: UUID) -> dict[str, Any]:
    """Return what a caller gives to create one session (the rest are defaults)."""
    return {"user_id": user_id, "name": "new", "status": "active", "sdk_options": {"model": "m"}}


async def seed(db: Database, settings: Settings) -> tuple[list[UUID], list[UUID]]:
    """Fill users, sessions, tool_calls and session_templates; return user and session ids."""
    rng = random.Random(11)
    await db.drop_all()
    await db.create_all()
    users: list[dict[str, Any]] = [
        {
            "id": uuid7(),
            "created_at": T0,
            "updated_at": T0,
            "deleted_at": None,
            "email": f"u{n}@example.com",
            "username": f"u{n}",
            "full_name": None,
            "is_active": True,
            "last_login_at": None,
        }
        for n in range(settings.users)
    ]
    user_ids = [u["id"] for u in users]
    sessions = [session_row(n, user_ids[n % len(user_ids)]) for n in range(settings.rows)]
    session_ids = [s["id"] for s in sessions]
    tool_calls = [
        {
            "id": uuid7(),
            "created_at": T0 + timedelta(seconds=n),
            "updated_at": T0,
            "session_id": session_ids[n % 1000],
            "message_id": None,
            "tool_use_id": f"toolu_{n}",
            "tool_name": TOOLS[rng.randrange(len(TOOLS))],
            "tool_input": {"n": n},
            "tool_output": None,
            "status": ("success", "success", "error", "pending")[n % 4],
            "permission_decision": None,
            "is_error": n % 4 == 2,
            "error_message": None,
            "duration_ms": rng.randrange(1, 5000),
            "started_at": None,
            "completed_at": None,
        }
        for n in range(settings.rows)
    ]
    templates: list[dict[str, Any]] = [
        {
            "id": uuid7(),
            "created_at": T0 + timedelta(seconds=n),
            "updated_at": T0,
            "deleted_at": None,
            "user_id": user_ids[n % len(user_ids)],
            "name": f"template {n}",
            "description": None,
            "system_prompt": None,
            "sdk_options": {},
            "tags": rng.sample(TAGS, 2),
            "is_public": n % 50 == 0,
            "is_organization_shared": n % 70 == 0,
            "usage_count": rng.randrange(0, 10_000),
            "last_used_at": None,
        }
        for n in range(settings.rows)
    ]
    async with db.engine.begin() as conn:
        for model, rows in (
            (UserModel, users),
            (SessionModel, sessions),
            (ToolCallModel, tool_calls),
            (SessionTemplateModel, templates),
        ):
            table = cast(Any, model).__table__
            for start in range(0, len(rows), 10_000):
                await conn.execute(sa.insert(table), rows[start : start + 10_000])
        await conn.exec_driver_sql("ANALYZE")
    return user_ids, session_ids


def encoder(ctx: Context, model: type[Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Return a function giving each value as the driver expects it (what SQLAlchemy binds)."""
    columns = {c.key: c for c in sa.inspect(model).columns}
    dialect = ctx.dialect
    processors = {name: c.type.dialect_impl(dialect).bind_processor(dialect) for name, c in columns.items()}

    def encode(row: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, value in row.items():
            proc = processors[name]
            out[name] = proc(value) if proc is not None and value is not None else value
        return out

    return encode


# -- the variants ---------------------------------------------------------------------------


class FastCRUDSession(BaseModel):
    """fastcrud's create schema for sessions."""

    id: UUID
    created_at: datetime
    updated_at: datetime
    user_id: UUID
    name: str
    status: str
    sdk_options: dict[str, Any]


class AASessionRepository(SQLAlchemyAsyncRepository[SessionModel]):  # type: ignore[type-var]  # SQLModel tables meet ModelProtocol at run time
    """advanced-alchemy's repository over the same SessionModel."""

    model_type = SessionModel


def build_calls(ctx: Context, bulk_rows: int) -> dict[str, dict[str, Call]]:
    """Return, per operation, one coroutine factory per variant (missing = not supported)."""
    M = SessionModel
    table: sa.Table = M.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
    tc_table: sa.Table = ToolCallModel.__table__  # type: ignore[attr-defined]  # as above
    tp_table: sa.Table = SessionTemplateModel.__table__  # type: ignore[attr-defined]  # as above
    db, maker, baseline, pg = ctx.db, ctx.maker, ctx.baseline, ctx.backend == "postgresql"
    encode = encoder(ctx, M)
    fc: Any = FastCRUD(M)
    visible = col(M.deleted_at).is_(None)
    calls: dict[str, dict[str, Call]] = {op: {} for op in OPERATIONS}
    cols = [c.name for c in table.columns]

    def overlap(column: Any, tags: list[str]) -> sa.ColumnElement[bool]:
        if pg:
            overlaps: sa.ColumnElement[bool] = sa.type_coerce(column, ARRAY(sa.String())).overlap(
                sa.literal(tags, ARRAY(sa.String()))
            )
            return overlaps
        each = sa.func.json_each(column).table_valued("value").alias()
        return sa.exists().select_from(each).where(each.c.value.in_(tags))

    # Core statements, built once (bound parameters).
    core_get = sa.select(table).where(table.c.id == sa.bindparam("k"), table.c.deleted_at.is_(None))
    core_list = (
        sa.select(table)
        .where(table.c.status == sa.bindparam("s"), table.c.deleted_at.is_(None))
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .limit(100)
    )
    core_count = (
        sa.select(sa.func.count())
        .select_from(table)
        .where(table.c.status == sa.bindparam("s"), table.c.deleted_at.is_(None))
    )
    core_exists = sa.select(sa.exists().where(table.c.id == sa.bindparam("k"), table.c.deleted_at.is_(None)))
    core_insert = sa.insert(table).returning(*table.c)
    core_update = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("k"), table.c.deleted_at.is_(None))
        .values(
            name=sa.bindparam("name"),
            updated_at=sa.bindparam("now"),
            version=table.c.version + 1,
        )
        .returning(*table.c)
    )
    core_soft = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("k"), table.c.deleted_at.is_(None))
        .values(deleted_at=sa.bindparam("now"), updated_at=sa.bindparam("now"), version=table.c.version + 1)
    )
    core_by_user = (
        sa.select(table)
        .where(table.c.user_id == sa.bindparam("u"), table.c.deleted_at.is_(None))
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .limit(100)
    )
    core_stats = (
        sa.select(
            tc_table.c.tool_name,
            sa.func.count().label("total_calls"),
            sa.func.count().filter(tc_table.c.status == "success").label("success_count"),
            sa.func.count().filter(tc_table.c.status == "error").label("error_count"),
            sa.func.avg(tc_table.c.duration_ms).label("avg_duration_ms"),
        )
        .where(tc_table.c.session_id == sa.bindparam("sid"))
        .group_by(tc_table.c.tool_name)
        .order_by(tc_table.c.tool_name)
    )
    search_tags = ["tag3", "tag7"]

    def search_where(tbl_tags: Any, user_col: Any, public: Any, shared: Any, user: Any) -> list[Any]:
        return [overlap(tbl_tags, search_tags), sa.or_(user_col == user, public.is_(True), shared.is_(True))]

    core_search = (
        sa.select(tp_table)
        .where(
            tp_table.c.deleted_at.is_(None),
            *search_where(
                tp_table.c.tags,
                tp_table.c.user_id,
                tp_table.c.is_public,
                tp_table.c.is_organization_shared,
                sa.bindparam("u"),
            ),
        )
        .order_by(tp_table.c.usage_count.desc(), tp_table.c.created_at.desc(), tp_table.c.id.desc())
        .limit(100)
    )

    # -- get by id
    async def dl_get() -> Any:
        async with db.session(read_only=True) as s:
            return await SessionRepository(s).get_by_id(ctx.key())

    async def orm_get() -> Any:
        async with maker() as s:
            found = await s.get(M, ctx.key())
            await s.commit()
            return None if found is None or found.deleted_at is not None else found

    async def core_get_() -> Any:
        async with baseline.begin() as c:
            return (await c.execute(core_get, {"k": ctx.key()})).first()

    async def aa_get() -> Any:
        async with maker() as s:
            found = await AASessionRepository(session=s).get_one_or_none(col(M.id) == ctx.key(), visible)
            await s.commit()
            return found

    async def fc_get() -> Any:
        async with maker() as s:
            found = await fc.get(s, id=ctx.key(), where=[visible])
            await s.commit()
            return found

    calls["get by id"] = {
        "datalayer": dl_get,
        "orm": orm_get,
        "core": core_get_,
        "advanced-alchemy": aa_get,
        "fastcrud": fc_get,
    }

    # -- list 100 filtered
    async def dl_list() -> Any:
        async with db.session(read_only=True) as s:
            return await SessionRepository(s).get_all(filters=[col(M.status) == "active"], limit=100)

    async def orm_list() -> Any:
        async with maker() as s:
            statement = (
                select(M)
                .where(M.status == "active", visible)
                .order_by(col(M.created_at).desc(), col(M.id).desc())
                .limit(100)
            )
            rows = list((await s.exec(statement)).all())
            await s.commit()
            return rows

    async def core_list_() -> Any:
        async with baseline.begin() as c:
            return (await c.execute(core_list, {"s": "active"})).all()

    async def aa_list() -> Any:
        async with maker() as s:
            repo = AASessionRepository(session=s)
            rows = await repo.list(
                col(M.status) == "active",
                visible,
                OrderBy(field_name="created_at", sort_order="desc"),
                LimitOffset(limit=100, offset=0),
            )
            await s.commit()
            return rows

    async def fc_list() -> Any:
        async with maker() as s:
            rows = await fc.get_multi(
                s,
                offset=0,
                limit=100,
                sort_columns=["created_at", "id"],
                sort_orders=["desc", "desc"],
                return_total_count=False,
                where=[visible],
                status="active",
            )
            await s.commit()
            return rows

    calls["list 100 rows (filtered)"] = {
        "datalayer": dl_list,
        "orm": orm_list,
        "core": core_list_,
        "advanced-alchemy": aa_list,
        "fastcrud": fc_list,
    }

    # -- count
    async def dl_count() -> Any:
        async with db.session(read_only=True) as s:
            return await SessionRepository(s).count([col(M.status) == "completed"])

    async def orm_count() -> Any:
        async with maker() as s:
            statement = select(sa.func.count()).select_from(M).where(M.status == "completed", visible)
            n = (await s.exec(statement)).one()
            await s.commit()
            return n

    async def core_count_() -> Any:
        async with baseline.begin() as c:
            return (await c.execute(core_count, {"s": "completed"})).scalar_one()

    async def aa_count() -> Any:
        async with maker() as s:
            n = await AASessionRepository(session=s).count(col(M.status) == "completed", visible)
            await s.commit()
            return n

    async def fc_count() -> Any:
        async with maker() as s:
            n = await fc.count(s, where=[visible], status="completed")
            await s.commit()
            return n

    calls["count (filtered)"] = {
        "datalayer": dl_count,
        "orm": orm_count,
        "core": core_count_,
        "advanced-alchemy": aa_count,
        "fastcrud": fc_count,
    }

    # -- exists
    async def dl_exists() -> Any:
        async with db.session(read_only=True) as s:
            return await SessionRepository(s).exists(ctx.key())

    async def orm_exists() -> Any:
        async with maker() as s:
            found = (await s.exec(select(sa.exists().where(col(M.id) == ctx.key(), visible)))).one()
            await s.commit()
            return found

    async def core_exists_() -> Any:
        async with baseline.begin() as c:
            return (await c.execute(core_exists, {"k": ctx.key()})).scalar_one()

    async def aa_exists() -> Any:
        async with maker() as s:
            found = await AASessionRepository(session=s).exists(col(M.id) == ctx.key(), visible)
            await s.commit()
            return found

    async def fc_exists() -> Any:
        async with maker() as s:
            found = await fc.exists(s, where=[visible], id=ctx.key())
            await s.commit()
            return found

    calls["exists"] = {
        "datalayer": dl_exists,
        "orm": orm_exists,
        "core": core_exists_,
        "advanced-alchemy": aa_exists,
        "fastcrud": fc_exists,
    }

    # -- create one
    async def dl_create() -> Any:
        async with db.session() as s:
            return await SessionRepository(s).create(**new_session_values(ctx.user()))

    async def orm_create() -> Any:
        async with maker() as s:
            entity = M(**new_session_values(ctx.user()))
            s.add(entity)
            await s.commit()
            return entity

    async def core_create() -> Any:
        row = session_row(0, ctx.user(), utc_now()) | {"name": "new", "status": "active"}
        async with baseline.begin() as c:
            return (await c.execute(core_insert, row)).first()

    async def aa_create() -> Any:
        async with maker() as s:
            entity = await AASessionRepository(session=s).add(M(**new_session_values(ctx.user())))
            await s.commit()
            return entity

    async def fc_create() -> Any:
        now = utc_now()
        values = new_session_values(ctx.user()) | {"id": uuid7(), "created_at": now, "updated_at": now}
        async with maker() as s:
            return await fc.create(s, FastCRUDSession(**values))

    calls["create (single)"] = {
        "datalayer": dl_create,
        "orm": orm_create,
        "core": core_create,
        "advanced-alchemy": aa_create,
        "fastcrud": fc_create,
    }

    # -- create many
    def bulk_values() -> list[dict[str, Any]]:
        user = ctx.user()
        return [new_session_values(user) | {"name": f"bulk {n}"} for n in range(ctx_bulk_rows[0])]

    ctx_bulk_rows = [bulk_rows]

    async def dl_bulk() -> Any:
        rows = bulk_values()
        async with db.session() as s:
            return await SessionRepository(s).create_many(rows)

    async def orm_bulk() -> Any:
        rows = bulk_values()
        async with maker() as s:
            entities = [M(**row) for row in rows]
            s.add_all(entities)
            await s.commit()
            return entities

    async def core_bulk() -> Any:
        user = ctx.user()
        now = utc_now()
        rows = [
            session_row(0, user, now) | {"name": f"bulk {n}", "status": "active"}
            for n in range(ctx_bulk_rows[0])
        ]
        async with baseline.begin() as c:
            await c.execute(sa.insert(table), rows)

    async def aa_bulk() -> Any:
        rows = bulk_values()
        async with maker() as s:
            entities = await AASessionRepository(session=s).add_many([M(**row) for row in rows])
            await s.commit()
            return entities

    calls[BULK] = {
        "datalayer": dl_bulk,
        "orm": orm_bulk,
        "core": core_bulk,
        "advanced-alchemy": aa_bulk,
    }

    async def dl_bulk_ids() -> Any:
        rows = bulk_values()
        async with db.session() as s:
            return await SessionRepository(s).insert_many(rows)

    async def orm_bulk_ids() -> Any:
        # The ORM's own bulk INSERT from dicts (no entities), as its docs recommend.
        rows = bulk_values()
        async with maker() as s:
            await s.exec(sa.insert(M).execution_options(render_nulls=True), params=rows)
            await s.commit()

    calls[BULK_IDS] = {"datalayer": dl_bulk_ids, "orm": orm_bulk_ids, "core": core_bulk}

    # -- update by id
    async def dl_update() -> Any:
        async with db.session() as s:
            return await SessionRepository(s).update(ctx.key(), name="renamed")

    async def orm_update() -> Any:
        # The idiomatic unit of work: load, set attributes, commit (updated_at: onupdate).
        async with maker() as s:
            entity = (await s.exec(select(M).where(col(M.id) == ctx.key(), visible))).first()
            if entity is not None:
                entity.name = "renamed"
                entity.version += 1
            await s.commit()
            return entity

    async def core_update_() -> Any:
        async with baseline.begin() as c:
            return (
                await c.execute(core_update, {"k": ctx.key(), "name": "renamed", "now": utc_now()})
            ).first()

    async def aa_update() -> Any:
        async with maker() as s:
            repo = AASessionRepository(session=s)
            entity = await repo.get(ctx.key())
            entity.name = "renamed"
            entity.version += 1
            updated = await repo.update(entity)
            await s.commit()
            return updated

    async def fc_update() -> Any:
        async with maker() as s:
            return await fc.update(
                s,
                {"name": "renamed", "updated_at": utc_now(), "version": col(M.version) + 1},
                where=[visible],
                id=ctx.key(),
                return_columns=cols,
                one_or_none=True,
            )

    calls["update by id"] = {
        "datalayer": dl_update,
        "orm": orm_update,
        "core": core_update_,
        "advanced-alchemy": aa_update,
        "fastcrud": fc_update,
    }

    # -- soft delete (neither advanced-alchemy nor fastcrud soft-deletes a deleted_at-only model)
    async def dl_soft() -> Any:
        async with db.session() as s:
            return await SessionRepository(s).soft_delete(ctx.doomed())

    async def orm_soft() -> Any:
        async with maker() as s:
            now = utc_now()
            statement = (
                sa.update(M)
                .where(col(M.id) == ctx.doomed(), visible)
                .values(deleted_at=now, updated_at=now, version=col(M.version) + 1)
            )
            result = await s.exec(statement)
            await s.commit()
            return result.rowcount > 0

    async def core_soft_() -> Any:
        async with baseline.begin() as c:
            return (await c.execute(core_soft, {"k": ctx.doomed(), "now": utc_now()})).rowcount > 0

    calls["soft delete"] = {"datalayer": dl_soft, "orm": orm_soft, "core": core_soft_}

    # -- specialized
    async def dl_by_user() -> Any:
        async with db.session(read_only=True) as s:
            return await SessionRepository(s).get_by_user(ctx.user())

    async def orm_by_user() -> Any:
        async with maker() as s:
            statement = (
                select(M)
                .where(M.user_id == ctx.user(), visible)
                .order_by(col(M.created_at).desc(), col(M.id).desc())
                .limit(100)
            )
            rows = list((await s.exec(statement)).all())
            await s.commit()
            return rows

    async def core_by_user_() -> Any:
        async with baseline.begin() as c:
            return (await c.execute(core_by_user, {"u": ctx.user()})).all()

    async def aa_by_user() -> Any:
        async with maker() as s:
            rows = await AASessionRepository(session=s).list(
                col(M.user_id) == ctx.user(),
                visible,
                OrderBy(field_name="created_at", sort_order="desc"),
                LimitOffset(limit=100, offset=0),
            )
            await s.commit()
            return rows

    async def fc_by_user() -> Any:
        async with maker() as s:
            rows = await fc.get_multi(
                s,
                offset=0,
                limit=100,
                sort_columns=["created_at", "id"],
                sort_orders=["desc", "desc"],
                return_total_count=False,
                where=[visible],
                user_id=ctx.user(),
            )
            await s.commit()
            return rows

    calls["get_by_user"] = {
        "datalayer": dl_by_user,
        "orm": orm_by_user,
        "core": core_by_user_,
        "advanced-alchemy": aa_by_user,
        "fastcrud": fc_by_user,
    }

    async def dl_stats() -> Any:
        async with db.session(read_only=True) as s:
            return await ToolCallRepository(s).get_statistics_by_tool(ctx.stats_session)

    async def orm_stats() -> Any:
        T = ToolCallModel
        async with maker() as s:
            statement = (
                sa.select(
                    col(T.tool_name),
                    sa.func.count(col(T.id)).label("total_calls"),
                    sa.func.count().filter(col(T.status) == "success").label("success_count"),
                    sa.func.count().filter(col(T.status) == "error").label("error_count"),
                    sa.func.avg(col(T.duration_ms)).label("avg_duration_ms"),
                )
                .where(col(T.session_id) == ctx.stats_session)
                .group_by(col(T.tool_name))
                .order_by(col(T.tool_name))
            )
            rows = (await s.execute(statement)).all()
            await s.commit()
            return [
                {
                    "tool_name": r.tool_name,
                    "total_calls": r.total_calls,
                    "success_count": r.success_count,
                    "error_count": r.error_count,
                    "avg_duration_ms": float(r.avg_duration_ms) if r.avg_duration_ms is not None else None,
                }
                for r in rows
            ]

    async def core_stats_() -> Any:
        async with baseline.begin() as c:
            return (await c.execute(core_stats, {"sid": ctx.stats_session})).all()

    calls["get_statistics_by_tool"] = {"datalayer": dl_stats, "orm": orm_stats, "core": core_stats_}

    async def dl_search() -> Any:
        async with db.session(read_only=True) as s:
            return await SessionTemplateRepository(s).search_by_tags(search_tags, ctx.user())

    async def orm_search() -> Any:
        P = SessionTemplateModel
        async with maker() as s:
            statement = (
                select(P)
                .where(
                    col(P.deleted_at).is_(None),
                    *search_where(
                        col(P.tags),
                        col(P.user_id),
                        col(P.is_public),
                        col(P.is_organization_shared),
                        ctx.user(),
                    ),
                )
                .order_by(col(P.usage_count).desc(), col(P.created_at).desc(), col(P.id).desc())
                .limit(100)
            )
            rows = list((await s.exec(statement)).all())
            await s.commit()
            return rows

    async def core_search_() -> Any:
        async with baseline.begin() as c:
            return (await c.execute(core_search, {"u": ctx.user()})).all()

    calls["search_by_tags"] = {"datalayer": dl_search, "orm": orm_search, "core": core_search_}

    add_raw_calls(ctx, calls, encode, cols, search_tags, ctx_bulk_rows)
    return calls


def add_raw_calls(
    ctx: Context,
    calls: dict[str, dict[str, Call]],
    encode: Callable[[dict[str, Any]], dict[str, Any]],
    cols: list[str],
    search_tags: list[str],
    bulk_rows: list[int],
) -> None:
    """Add the raw-driver variant (asyncpg prepared statements / aiosqlite): the floor."""
    raw = ctx.raw
    pg = ctx.backend == "postgresql"
    names = ", ".join(cols)
    n = len(cols)

    def p(i: int) -> str:
        return f"${i}" if pg else "?"

    def key(value: UUID) -> Any:
        return value if pg else value.hex

    # The raw floor needs SQL text: only constant column names are interpolated, values are bound.
    sql = {
        "get": f"SELECT {names} FROM sessions WHERE id = {p(1)} AND deleted_at IS NULL",  # noqa: S608
        "list": f"SELECT {names} FROM sessions WHERE status = {p(1)} AND deleted_at IS NULL "  # noqa: S608
        "ORDER BY created_at DESC, id DESC LIMIT 100",
        "count": f"SELECT count(*) FROM sessions WHERE status = {p(1)} AND deleted_at IS NULL",  # noqa: S608
        "exists": f"SELECT EXISTS (SELECT 1 FROM sessions WHERE id = {p(1)} AND deleted_at IS NULL)",  # noqa: S608
        "insert": f"INSERT INTO sessions ({names}) VALUES ({', '.join(p(i + 1) for i in range(n))})",  # noqa: S608
        "update": f"UPDATE sessions SET name = {p(1)}, updated_at = {p(2)}, version = version + 1 "  # noqa: S608
        f"WHERE id = {p(3)} AND deleted_at IS NULL RETURNING {names}",
        "soft": f"UPDATE sessions SET deleted_at = {p(1)}, updated_at = {p(1) if pg else '?'}, "  # noqa: S608
        f"version = version + 1 WHERE id = {p(2)} AND deleted_at IS NULL",
        "by_user": f"SELECT {names} FROM sessions WHERE user_id = {p(1)} AND deleted_at IS NULL "  # noqa: S608
        "ORDER BY created_at DESC, id DESC LIMIT 100",
        "stats": "SELECT tool_name, count(*), count(*) FILTER (WHERE status = 'success'), "  # noqa: S608
        "count(*) FILTER (WHERE status = 'error'), avg(duration_ms) FROM tool_calls "
        f"WHERE session_id = {p(1)} GROUP BY tool_name ORDER BY tool_name",
    }
    tp_cols = ", ".join(c.name for c in SessionTemplateModel.__table__.columns)  # type: ignore[attr-defined]  # SQLModel table
    order = "ORDER BY usage_count DESC, created_at DESC, id DESC LIMIT 100"
    if pg:
        sql["search"] = (
            f"SELECT {tp_cols} FROM session_templates WHERE deleted_at IS NULL AND tags && $1::varchar[] "  # noqa: S608
            f"AND (user_id = $2 OR is_public OR is_organization_shared) {order}"
        )
    else:
        sql["search"] = (
            f"SELECT {tp_cols} FROM session_templates WHERE deleted_at IS NULL AND EXISTS "  # noqa: S608
            "(SELECT 1 FROM json_each(session_templates.tags) WHERE value IN (?, ?)) "
            f"AND (user_id = ? OR is_public = 1 OR is_organization_shared = 1) {order}"
        )

    def as_params(row: dict[str, Any]) -> tuple[Any, ...]:
        encoded = encode(row)
        return tuple(encoded[c] for c in cols)

    now_enc = encoder(ctx, SessionModel)
    if pg:
        prepared: dict[str, Any] = {}

        async def prep(name: str) -> Any:
            statement = prepared.get(name)
            if statement is None:
                statement = prepared[name] = await raw.prepare(sql[name])
            return statement

        async def fetch(name: str, *args: Any) -> Any:
            return await (await prep(name)).fetch(*args)

        async def fetchval(name: str, *args: Any) -> Any:
            return await (await prep(name)).fetchval(*args)

        async def execute(name: str, *args: Any) -> Any:
            return await (await prep(name)).fetch(*args)

        async def execute_many(name: str, rows: list[tuple[Any, ...]]) -> None:
            async with raw.transaction():
                await raw.executemany(sql[name], rows)

    else:

        async def fetch(name: str, *args: Any) -> Any:
            async with raw.execute(sql[name], args) as cursor:
                return await cursor.fetchall()

        async def fetchval(name: str, *args: Any) -> Any:
            async with raw.execute(sql[name], args) as cursor:
                row = await cursor.fetchone()
                return row[0]

        async def execute(name: str, *args: Any) -> Any:
            async with raw.execute(sql[name], args) as cursor:
                rows = await cursor.fetchall()
            await raw.commit()
            return rows

        async def execute_many(name: str, rows: list[tuple[Any, ...]]) -> None:
            await raw.executemany(sql[name], rows)
            await raw.commit()

    def now() -> Any:
        return now_enc({"updated_at": utc_now()})["updated_at"]

    async def r_create() -> Any:
        row = session_row(0, ctx.user(), utc_now()) | {"name": "new", "status": "active"}
        return await execute("insert", *as_params(row))

    async def r_bulk() -> Any:
        user, stamp = ctx.user(), utc_now()
        rows = [
            as_params(session_row(0, user, stamp) | {"name": f"bulk {i}", "status": "active"})
            for i in range(bulk_rows[0])
        ]
        await execute_many("insert", rows)

    calls["get by id"]["raw"] = lambda: fetch("get", key(ctx.key()))
    calls["list 100 rows (filtered)"]["raw"] = lambda: fetch("list", "active")
    calls["count (filtered)"]["raw"] = lambda: fetchval("count", "completed")
    calls["exists"]["raw"] = lambda: fetchval("exists", key(ctx.key()))
    calls["create (single)"]["raw"] = r_create
    calls[BULK]["raw"] = r_bulk
    calls[BULK_IDS]["raw"] = r_bulk
    calls["update by id"]["raw"] = lambda: execute("update", "renamed", now(), key(ctx.key()))
    if pg:
        calls["soft delete"]["raw"] = lambda: execute("soft", now(), key(ctx.doomed()))
    else:
        calls["soft delete"]["raw"] = lambda: execute("soft", now(), now(), key(ctx.doomed()))
    calls["get_by_user"]["raw"] = lambda: fetch("by_user", key(ctx.user()))
    calls["get_statistics_by_tool"]["raw"] = lambda: fetch("stats", key(ctx.stats_session))
    if pg:
        calls["search_by_tags"]["raw"] = lambda: fetch("search", search_tags, ctx.user())
    else:
        calls["search_by_tags"]["raw"] = lambda: fetch("search", *search_tags, key(ctx.user()))


# -- timing ---------------------------------------------------------------------------------


async def time_calls(call: Call, iterations: int) -> float:
    """Return the mean seconds per call over ``iterations`` calls."""
    start = time.perf_counter()
    for _ in range(iterations):
        await call()
    return (time.perf_counter() - start) / iterations


async def interleaved(
    calls: Mapping[K, Call],
    rounds: int,
    iterations: int,
    *,
    seed: int,
    after_each: Callable[[], Awaitable[None]] | None = None,
    after_round: Callable[[int], Awaitable[None]] | None = None,
) -> dict[K, float]:
    """Return each call's median seconds per call over ``rounds`` rounds.

    Every round times every call (``iterations`` calls in a row), in a new random order, so
    a change of the machine's load hits all of them alike.
    """
    samples: dict[K, list[float]] = {key: [] for key in calls}
    rng = random.Random(seed)
    for round_no in range(rounds):
        keys = list(calls)
        rng.shuffle(keys)
        for key in keys:
            samples[key].append(await time_calls(calls[key], iterations))
            if after_each is not None:
                await after_each()
        if after_round is not None:
            await after_round(round_no)
    return {key: statistics.median(values) for key, values in samples.items()}


async def cleanup_bulk(ctx: Context) -> None:
    """Remove rows written by create benchmarks so the table stays at its seeded size."""
    async with ctx.db.engine.begin() as conn:
        await conn.execute(sa.delete(SessionModel).where(col(SessionModel.name).in_(["new", "renamed-x"])))
        await conn.execute(sa.delete(SessionModel).where(col(SessionModel.name).like("bulk %")))


async def one_by_one(ctx: Context, rows: int) -> float:
    """Return seconds to add ``rows`` sessions one by one (add + flush each) in one unit of work."""
    user = ctx.user()
    start = time.perf_counter()
    async with ctx.maker() as s:
        for n in range(rows):
            s.add(SessionModel(**new_session_values(user) | {"name": f"bulk {n}"}))
            await s.flush()
        await s.commit()
    return time.perf_counter() - start


async def run_backend(ctx: Context, settings: Settings) -> dict[str, Any]:
    """Run every operation of every variant; return medians (µs) and extra figures."""
    calls = build_calls(ctx, settings.bulk_rows)
    # The seeded keys stay alive for the whole run: keep the collector from rescanning them
    # (the same for every variant; a service does the same with gc.freeze() after start-up).
    gc.collect()
    gc.freeze()
    # Warm up: connections, statement caches, prepared statements, lazy imports.
    for op in OPERATIONS:
        if op in BULKS:
            continue
        for call in calls[op].values():
            await call()
    await cleanup_bulk(ctx)

    async def round_done(round_no: int) -> None:
        await cleanup_bulk(ctx)
        console.print(f"  [{ctx.backend}] round {round_no + 1}/{settings.rounds} done")

    async def bulk_round_done(round_no: int) -> None:
        console.print(f"  [{ctx.backend}] bulk round {round_no + 1}/{settings.bulk_rounds} done")

    async def tidy() -> None:
        await cleanup_bulk(ctx)
        # Each bulk call starts alike: not with the WAL checkpoint or the vacuum of the one before.
        settle = "PRAGMA wal_checkpoint(TRUNCATE)" if ctx.backend == "sqlite" else "VACUUM sessions"
        await ctx.raw.execute(settle)
        gc.collect()

    singles = {(op, v): call for op in OPERATIONS if op not in BULKS for v, call in calls[op].items()}
    seconds = await interleaved(singles, settings.rounds, settings.iterations, seed=3, after_round=round_done)
    gc.collect()
    bulks = {(op, v): call for op in BULKS for v, call in calls[op].items()}
    seconds |= await interleaved(
        bulks, settings.bulk_rounds, 1, seed=4, after_each=tidy, after_round=bulk_round_done
    )
    one = await one_by_one(ctx, settings.one_by_one_rows)
    await cleanup_bulk(ctx)
    gc.unfreeze()
    medians: dict[str, dict[str, float]] = {op: {} for op in OPERATIONS}
    for (op, variant), value in seconds.items():
        medians[op][variant] = value * 1e6
    return {
        "medians_us": medians,
        "one_by_one_us_for_bulk": one / settings.one_by_one_rows * settings.bulk_rows * 1e6,
    }


# -- keyset vs offset, memory ---------------------------------------------------------------


async def grow_sessions(db: Database, total: int, users: int) -> None:
    """Add generated sessions (server side) until the table holds ``total`` rows."""
    async with db.engine.begin() as conn:
        have = (await conn.execute(sa.select(sa.func.count()).select_from(SessionModel))).scalar_one()
        missing = total - have
        if missing <= 0:
            return
        await conn.exec_driver_sql(
            f"""
            INSERT INTO sessions (id, created_at, updated_at, user_id, name, mode, status, sdk_options,
                version, total_messages, total_tool_calls, total_cost_usd, api_input_tokens,
                api_output_tokens, api_cache_creation_tokens, api_cache_read_tokens)
            SELECT gen_random_uuid(), timestamptz '2024-01-01' + g * interval '1 second',
                timestamptz '2024-01-01', u.id, 'generated', 'interactive', 'created', '{{}}'::jsonb,
                1, 0, 0, 0, 0, 0, 0, 0
            FROM generate_series(1, {int(missing)}) AS g
            JOIN (SELECT id, (row_number() OVER (ORDER BY id)) - 1 AS rn FROM users) AS u
              ON u.rn = g % {int(users)}
            """  # noqa: S608
        )
        await conn.exec_driver_sql("ANALYZE sessions")


async def keyset_vs_offset(ctx: Context, settings: Settings) -> dict[str, dict[str, float]]:
    """Return median ms of one 100-row page at each offset, by OFFSET and by keyset cursor."""
    await grow_sessions(ctx.db, settings.keyset_rows, settings.users)
    results: dict[str, dict[str, float]] = {}
    for offset in settings.keyset_offsets:
        cursor: str | None = None
        async with ctx.db.session(read_only=True) as s:
            repo = SessionRepository(s)
            if offset > 0:
                anchor = (await repo.get_all(skip=offset - 1, limit=1))[0]
                first = await repo.paginate(
                    limit=1,
                    filters=[
                        sa.tuple_(col(SessionModel.created_at), col(SessionModel.id))
                        <= sa.tuple_(anchor.created_at, anchor.id)
                    ],
                )
                cursor = first.next_cursor

        async def by_offset(offset: int = offset) -> Any:
            async with ctx.db.session(read_only=True) as s:
                return await SessionRepository(s).get_all(skip=offset, limit=100)

        async def by_keyset(cursor: str | None = cursor) -> Any:
            async with ctx.db.session(read_only=True) as s:
                return await SessionRepository(s).paginate(limit=100, cursor=cursor)

        assert [r.id for r in await by_offset()] == [r.id for r in (await by_keyset()).items]
        times = await interleaved({"offset": by_offset, "keyset": by_keyset}, 5, 2, seed=offset)
        results[str(offset)] = {"offset_ms": times["offset"] * 1e3, "keyset_ms": times["keyset"] * 1e3}
    return results


async def memory(ctx: Context, rows: int) -> dict[str, float]:
    """Return peak traced memory (MiB) of stream vs get_all / list over the same rows."""

    async def peak(work: Callable[[], Awaitable[int]]) -> tuple[float, int, float]:
        gc.collect()
        tracemalloc.start()
        start = time.perf_counter()
        count = await work()
        elapsed = time.perf_counter() - start
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top / 2**20, count, elapsed

    async def stream_n(n: int) -> int:
        seen = 0
        async with ctx.db.session(read_only=True) as s:
            rows = SessionRepository(s).stream(batch_size=1000)
            async with aclosing(rows):
                async for _ in rows:
                    seen += 1
                    if seen == n:
                        break
        return seen

    async def get_all_10k() -> int:
        async with ctx.db.session(read_only=True) as s:
            return len(await SessionRepository(s).get_all(limit=10_000))

    async def list_all(n: int) -> int:
        async with ctx.db.session(read_only=True) as s:
            statement = (
                select(SessionModel)
                .where(col(SessionModel.deleted_at).is_(None))
                .order_by(col(SessionModel.created_at).desc(), col(SessionModel.id).desc())
                .limit(n)
            )
            return len((await s.exec(statement)).all())

    out: dict[str, float] = {}
    out["stream_10000_mib"], _, _ = await peak(lambda: stream_n(10_000))
    out["get_all_10000_mib"], _, _ = await peak(get_all_10k)
    out[f"stream_{rows}_mib"], _, elapsed = await peak(lambda: stream_n(rows))
    out[f"stream_{rows}_seconds"] = elapsed
    out[f"list_{rows}_mib"], _, _ = await peak(lambda: list_all(rows))
    return out


async def rss_child(url: str, mode: str, rows: int) -> dict[str, float]:
    """Walk ``rows`` sessions in this (fresh) process; return how much its peak RSS grew (MiB).

    ``stream`` iterates ``SessionRepository.stream()``; ``get_all`` keeps every row, read
    with ``get_all`` 10,000 at a time (keyset filter, so that deep pages stay cheap).
    """
    db = Database(url)
    try:
        async with db.session(read_only=True) as s:  # connection, imports and caches first
            await SessionRepository(s).get_all(limit=10)
        gc.collect()
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        seen = 0
        async with db.session(read_only=True) as s:
            repo = SessionRepository(s)
            if mode == "stream":
                async for _ in repo.stream(batch_size=1000):
                    seen += 1
            else:
                kept: list[SessionModel] = []
                while len(kept) < rows:
                    after = (
                        [
                            sa.tuple_(col(SessionModel.created_at), col(SessionModel.id))
                            < sa.tuple_(kept[-1].created_at, kept[-1].id)
                        ]
                        if kept
                        else []
                    )
                    page = await repo.get_all(limit=10_000, filters=after)
                    if not page:
                        break
                    kept.extend(page)
                seen = len(kept)
        elapsed = time.perf_counter() - started
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
        return {"rows": seen, "peak_rss_growth_mib": grown, "seconds": elapsed}
    finally:
        await db.dispose()


async def rss_comparison(url: str) -> dict[str, dict[str, float]]:
    """Return ``rss_child`` figures for stream and get_all, each run in its own process."""
    out: dict[str, dict[str, float]] = {}
    for mode in ("stream", "get_all"):
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--memory-child", mode, url, stdout=asyncio.subprocess.PIPE
        )
        stdout, _ = await child.communicate()
        out[mode] = json.loads(stdout.decode().strip().splitlines()[-1])
    return out


# -- scale: the specialized queries at 100,000 and at 1,000,000 rows -----------------------------

SCALE_TABLES = (SessionModel, SessionTemplateModel)


def scale_queries(ctx: Context) -> dict[str, Call]:
    """Return the bounded specialized queries (a page each) whose time must not grow with the table."""
    tags = ["tag3", "tag7"]

    async def run(work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        async with ctx.db.session(read_only=True) as s:
            return await work(s)

    async def reference(s: AsyncSession) -> Any:
        return (await s.exec(select(sa.literal(1)))).one()

    return {
        # The cost of a unit of work alone, to read the other figures against.
        "reference: SELECT 1": lambda: run(reference),
        "search_by_tags (user)": lambda: run(
            lambda s: SessionTemplateRepository(s).search_by_tags(tags, ctx.user())
        ),
        "search_by_tags (all)": lambda: run(lambda s: SessionTemplateRepository(s).search_by_tags(tags)),
        "search_by_tags (user, skip 200)": lambda: run(
            lambda s: SessionTemplateRepository(s).search_by_tags(tags, ctx.user(), skip=200)
        ),
        "get_by_user": lambda: run(lambda s: SessionRepository(s).get_by_user(ctx.user())),
        "get_by_status": lambda: run(lambda s: SessionRepository(s).get_by_status("active")),
        "get_all (newest page)": lambda: run(lambda s: SessionRepository(s).get_all()),
        "paginate (first page)": lambda: run(lambda s: SessionRepository(s).paginate()),
    }


async def copy_rows(db: Database, model: type[Any], total: int) -> None:
    """Grow a table to ``total`` rows by copying its own rows (new ids, same distribution), in SQL."""
    table: sa.Table = model.__table__
    new_id = "gen_random_uuid()" if db.backend == "postgresql" else "lower(hex(randomblob(16)))"
    names = [c.name for c in table.columns]
    # Only constant column names and a generated-id function are interpolated; no user values.
    source = ", ".join(new_id if n == "id" else n for n in names)
    async with db.engine.begin() as conn:
        while True:
            have = (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            if have >= total:
                break
            sql = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {source} FROM {table.name} LIMIT :n"  # noqa: S608
            await conn.execute(sa.text(sql), {"n": min(have, total - have)})
        await conn.exec_driver_sql(f"ANALYZE {table.name}")


async def scale_databases(backend: str, tmp: Path, server: TemporaryPostgres | None) -> list[str]:
    """Return the URLs of two empty databases on the backend (two files; two databases of one server)."""
    if server is None:
        return [f"sqlite+aiosqlite:///{tmp / 'small.db'}", f"sqlite+aiosqlite:///{tmp / 'large.db'}"]
    url = server.start()
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await admin.execute("CREATE DATABASE bench_large")
    finally:
        await admin.close()
    return [url, url.rsplit("/", 1)[0] + "/bench_large"]


async def scale(settings: Settings, sizes: tuple[int, int]) -> dict[str, Any]:
    """Time each bounded specialized query at both table sizes, per backend; print and return them.

    Both sizes are open at once (two SQLite files, two PostgreSQL databases of one server)
    and timed in the same interleaved rounds, so a change of load hits both alike.
    """
    out: dict[str, Any] = {}
    small, large = sizes
    with tempfile.TemporaryDirectory(prefix="datalayer-scale-") as tmp:
        for backend in settings.backends:
            console.rule(f"scale: {backend}")
            server = TemporaryPostgres(database="bench") if backend == "postgresql" else None
            contexts: list[Context] = []
            try:
                for url in await scale_databases(backend, Path(tmp), server):
                    contexts.append(await open_context(backend, url, replace(settings, rows=small)))
                started = time.perf_counter()
                for model in SCALE_TABLES:
                    await copy_rows(contexts[1].db, model, large)
                console.print(f"  grown to {large:,} rows in {time.perf_counter() - started:.0f}s")
                for ctx in contexts:  # both as a service finds them: WAL folded in, tables vacuumed
                    if backend == "sqlite":
                        await ctx.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    else:
                        await ctx.raw.execute("VACUUM ANALYZE")
                queries = {
                    (size, name): call
                    for size, ctx in zip(sizes, contexts, strict=True)
                    for name, call in scale_queries(ctx).items()
                }
                for call in queries.values():  # warm up
                    await call()
                seconds = await interleaved(queries, settings.rounds, settings.iterations, seed=9)
            finally:
                for ctx in contexts:
                    await ctx.close()
                if server is not None:
                    server.cleanup()
            names = list(scale_queries(contexts[0]))
            table = Table(title=f"{backend}: median ms per call, {small:,} vs {large:,} rows (interleaved)")
            for column in ("query", f"{small:,}", f"{large:,}", "ratio"):
                table.add_column(column, justify="right")
            figures: dict[str, dict[str, float]] = {}
            for name in names:
                before, after = seconds[(small, name)] * 1e3, seconds[(large, name)] * 1e3
                ratio = after / before
                style = "green" if ratio <= 2 else "red"
                table.add_row(name, f"{before:.2f}", f"{after:.2f}", f"[{style}]{ratio:.2f}x[/]")
                figures[name] = {"small_ms": before, "large_ms": after}
            console.print(table)
            out[backend] = figures
    return out


# -- report ---------------------------------------------------------------------------------


def ratios(medians: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Return each variant's median divided by the hand-written ORM median, per operation."""
    return {
        op: {v: t / per[REFERENCE] for v, t in per.items() if REFERENCE in per} for op, per in medians.items()
    }


def target_notes(backend: str, result: dict[str, Any]) -> list[str]:
    """Return the issue's targets that this backend's figures miss."""
    medians = result["medians_us"]
    notes = []
    for op, per in medians.items():
        if "datalayer" not in per or op in BULKS:
            continue
        ratio = per["datalayer"] / per[REFERENCE]
        target = WRITE_TARGET.get(op, 1.00)
        if ratio > target:
            notes.append(
                f"{backend}: {op}: datalayer {ratio:.2f}x of hand-written ORM (target <= {target:.2f}x)"
            )
        for other in ("advanced-alchemy", "fastcrud"):
            if other in per and per["datalayer"] > per[other]:
                notes.append(
                    f"{backend}: {op}: datalayer slower than {other} ({per['datalayer'] / per[other]:.2f}x)"
                )
    for op, target in CORE_TARGET.items():
        vs_core = medians[op]["datalayer"] / medians[op]["core"]
        if vs_core > target:
            notes.append(f"{backend}: {op} is {vs_core:.2f}x Core insert() (target <= {target:.2f}x)")
    return notes


def print_table(backend: str, result: dict[str, Any]) -> None:
    """Print medians and ratios to hand-written ORM as a rich table."""
    medians = result["medians_us"]
    table = Table(title=f"{backend}: median per operation (ratio to hand-written ORM)")
    table.add_column("operation")
    for variant in VARIANTS:
        table.add_column(variant, justify="right")
    for op in OPERATIONS:
        per = medians[op]
        cells = []
        for variant in VARIANTS:
            if variant not in per:
                cells.append("-")
                continue
            value = per[variant]
            shown = f"{value / 1000:,.1f} ms" if value >= 10_000 else f"{value:,.0f} µs"
            ratio = value / per[REFERENCE]
            style = "green" if ratio <= 1.0 else "yellow" if ratio <= 1.10 else "red"
            text = f"{shown} ({ratio:.2f}x)"
            cells.append(f"[{style}]{text}[/]" if variant == "datalayer" else text)
        table.add_row(op, *cells)
    console.print(table)
    bulk, ids = medians[BULK], medians[BULK_IDS]
    console.print(
        f"  create_many: datalayer {bulk['datalayer'] / bulk['core']:.2f}x Core insert(), insert_many "
        f"{ids['datalayer'] / ids['core']:.2f}x; "
        f"{result['one_by_one_us_for_bulk'] / bulk['datalayer']:.1f}x faster than one by one "
        f"(one by one ≈ {result['one_by_one_us_for_bulk'] / 1e6:.2f} s for {BULK.split()[1]} rows)"
    )


def chart(results: dict[str, Any], path: Path) -> None:
    """Write a bar chart of ratios to hand-written ORM, one panel per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = [b for b in results["backends"]]
    fig, axes = plt.subplots(len(backends), 1, figsize=(14, 5 * len(backends)), squeeze=False)
    width = 0.8 / len(VARIANTS)
    for ax, backend in zip(axes[:, 0], backends, strict=True):
        rows = results["backends"][backend]["ratios"]
        for i, variant in enumerate(VARIANTS):
            xs = [n + i * width for n, op in enumerate(OPERATIONS) if variant in rows[op]]
            ys = [rows[op][variant] for op in OPERATIONS if variant in rows[op]]
            ax.bar(xs, ys, width, label=variant)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axhline(1.1, color="red", linewidth=0.6, linestyle="--")
        ax.set_yscale("log")
        ax.set_xticks([n + 0.4 - width / 2 for n in range(len(OPERATIONS))])
        ax.set_xticklabels(OPERATIONS, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("median / hand-written ORM (log)")
        ax.set_title(f"{backend} ({results['rows']:,} rows per table)")
        ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def machine() -> dict[str, str]:
    """Return a short description of the machine and versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "sqlalchemy": sa.__version__,
        "sqlmodel": version("sqlmodel"),
        "asyncpg": asyncpg.__version__,
        "aiosqlite": aiosqlite.__version__,
        "advanced_alchemy": version("advanced-alchemy"),
        "fastcrud": version("fastcrud"),
        "sqlite": __import__("sqlite3").sqlite_version,
    }


# -- main -----------------------------------------------------------------------------------


def baseline_engine(url: sa.URL) -> AsyncEngine:
    """Return the engine the hand-written variants use: what a user writes without datalayer.

    PostgreSQL: ``create_async_engine(url)``, nothing else (no listener, no command timeout).
    SQLite: SQLAlchemy's documented recipe for real transactions on pysqlite/aiosqlite
    (driver autocommit off, ``BEGIN`` sent in the ``begin`` event, here ``BEGIN IMMEDIATE``
    as datalayer's write units do) plus ``foreign_keys=ON``; WAL is a property of the file.
    No slow-query log, no tracing: their cost is datalayer's to carry.
    """
    engine = create_async_engine(url)
    if url.get_backend_name() != "sqlite":
        return engine

    @sa.event.listens_for(engine.sync_engine, "connect")
    def connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine.sync_engine, "begin")
    def begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


async def open_context(backend: str, url: str, settings: Settings) -> Context:
    """Seed a database and open every variant's connection to it."""
    db = Database(url)
    started = time.perf_counter()
    user_ids, session_ids = await seed(db, settings)
    console.print(
        f"  [{backend}] seeded {settings.rows:,} rows x 3 tables in {time.perf_counter() - started:.1f}s"
    )
    baseline = baseline_engine(db.url)
    maker = async_sessionmaker(baseline, class_=AsyncSession, expire_on_commit=False)
    if backend == "postgresql":
        raw = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    else:
        raw = await aiosqlite.connect(db.url.database or "")
        await raw.execute("PRAGMA journal_mode=WAL")
        await raw.execute("PRAGMA synchronous=NORMAL")
        await raw.execute("PRAGMA foreign_keys=ON")
    # The tables as a service finds them: SQLite's WAL folded in; PostgreSQL's vacuumed (else
    # autovacuum starts partway through the rounds, and index-only scans visit the heap).
    await raw.execute("PRAGMA wal_checkpoint(TRUNCATE)" if backend == "sqlite" else "VACUUM ANALYZE")
    ids = list(session_ids)
    random.Random(5).shuffle(ids)
    deletable = ids[: len(ids) // 5]
    return Context(
        backend=backend,
        db=db,
        baseline=baseline,
        maker=maker,
        raw=raw,
        session_ids=ids[len(ids) // 5 :],
        deletable=deletable,
        user_ids=user_ids,
        stats_session=session_ids[1],
    )


async def main(settings: Settings, write: bool) -> dict[str, Any]:
    """Run the benchmark on each backend and write the results."""
    began = time.perf_counter()
    out: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "rows": settings.rows,
        "rounds": settings.rounds,
        "iterations": settings.iterations,
        "reference": REFERENCE,
        "backends": {},
    }
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="datalayer-bench-") as tmp:
        for backend in settings.backends:
            console.rule(f"{backend}")
            server: TemporaryPostgres | None = None
            if backend == "postgresql":
                server = TemporaryPostgres(database="bench")
                url = server.start()
            else:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            try:
                ctx = await open_context(backend, url, settings)
                try:
                    result = await run_backend(ctx, settings)
                    result["ratios"] = ratios(result["medians_us"])
                    print_table(backend, result)
                    notes.extend(target_notes(backend, result))
                    if backend == "postgresql" and settings.keyset_rows:
                        started = time.perf_counter()
                        result["keyset_vs_offset"] = await keyset_vs_offset(ctx, settings)
                        console.print(
                            f"  keyset vs offset on {settings.keyset_rows:,} rows "
                            f"({time.perf_counter() - started:.0f}s incl. growing the table):"
                        )
                        for offset, figures in result["keyset_vs_offset"].items():
                            console.print(
                                f"    offset {int(offset):>9,}: OFFSET {figures['offset_ms']:8.2f} ms   "
                                f"keyset {figures['keyset_ms']:6.2f} ms"
                            )
                    if backend == "postgresql" and settings.keyset_rows:
                        result["rss_all_rows"] = await rss_comparison(url)
                        for mode, figures in result["rss_all_rows"].items():
                            console.print(
                                f"  {mode} over all {int(figures['rows']):,} rows (own process): peak RSS "
                                f"+{figures['peak_rss_growth_mib']:,.0f} MiB in {figures['seconds']:.0f}s"
                            )
                    result["memory"] = await memory(ctx, settings.stream_rows)
                    console.print(f"  peak memory (tracemalloc, MiB): {json.dumps(result['memory'])}")
                    out["backends"][backend] = result
                finally:
                    await ctx.close()
            finally:
                if server is not None:
                    server.cleanup()
    out["target_misses"] = notes
    out["elapsed_seconds"] = round(time.perf_counter() - began, 1)
    console.rule("targets")
    for note in notes or ["every target met"]:
        console.print(f"  {note}")
    console.print(f"total time: {out['elapsed_seconds']:.0f}s")
    if write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "latest.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
        chart(out, RESULTS / "ratios.png")
        console.print(f"wrote {RESULTS / 'latest.json'} and {RESULTS / 'ratios.png'}")
    return out


def parse(argv: Sequence[str]) -> tuple[Settings, bool]:
    """Return the settings the command line asks for, and whether to write results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and rows (smoke run)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="only the bounded specialized queries, at 100,000 and 1,000,000 rows (--quick: 20k/200k)",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    if args.quick:
        settings = Settings(
            rows=20_000,
            users=200,
            rounds=3,
            iterations=8,
            bulk_rows=2_000,
            bulk_rounds=2,
            one_by_one_rows=300,
            keyset_rows=200_000,
            keyset_offsets=(0, 10_000, 100_000, 190_000),
            stream_rows=20_000,
        )
    if args.backend != "both":
        settings.backends = (args.backend,)
    if args.rounds:
        settings.rounds = args.rounds
    settings.scale = args.scale
    return settings, not args.no_write


async def scale_main(settings: Settings, write: bool) -> None:
    """Run ``--scale`` and write its figures to benchmarks/results/scale.json."""
    sizes = (settings.rows, settings.keyset_rows)
    began = time.perf_counter()
    figures = await scale(settings, sizes)
    console.print(f"total time: {time.perf_counter() - began:.0f}s")
    if write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "scale.json").write_text(
            json.dumps({"sizes": sizes, "backends": figures}, indent=2) + "\n"
        )


if __name__ == "__main__":
    # SQLModel asks for exec() over execute(); the hand-written statistics query is a
    # multi-column select, written as users write it.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # The seeding's multi-second INSERTs are slow queries; keep them off the console.
    logging.getLogger(SLOW_QUERY_LOGGER).disabled = True
    if sys.argv[1:2] == ["--memory-child"]:
        mode, url = sys.argv[2], sys.argv[3]
        print(json.dumps(asyncio.run(rss_child(url, mode, rows=10**9))))
    else:
        chosen, write_results = parse(sys.argv[1:])
        asyncio.run(scale_main(chosen, write_results) if chosen.scale else main(chosen, write_results))
