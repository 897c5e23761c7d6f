"""Retention: hard-delete soft-deleted rows older than a cutoff, in short batches.

A purge is many small units of work, not one: each batch deletes at most ``batch_size``
soft-deleted rows (and what their foreign keys cascade to) and commits, so no lock is held
longer than one batch and concurrent writers wait for one batch at most. That is why the
whole-table purge takes the ``Database`` (:func:`purge_deleted`) while
``SoftDeleteRepository.purge_deleted`` deletes one batch in the caller's unit of work.

A batch walks the table in primary-key order from where the previous one stopped, so a purge
reads each row once whatever its size; on PostgreSQL it skips rows another transaction has
locked (``FOR UPDATE SKIP LOCKED``: a row being restored right now is left for the next
purge). Interrupting a purge loses at most the batch in flight (rolled back); running it
again continues where it stopped, since purged rows are gone and the rest still match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeGuard
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer.errors import InvalidDataError, translate_errors
from datalayer.models import (
    MCPServerModel,
    ReportModel,
    SessionModel,
    SessionTemplateModel,
    SoftDeleteModel,
    TaskModel,
    UserModel,
)
from datalayer.models.base import metadata
from datalayer.types import utc_now

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from datalayer.database import Database

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MAX_BATCH_SIZE",
    "PURGEABLE",
    "count_purgeable",
    "cutoff_for",
    "delete_batch",
    "parse_age",
    "purge_deleted",
    "purge_with_progress",
    "table_models",
]

#: Soft-deleted rows per batch when none is given: a few hundred milliseconds of work per transaction.
DEFAULT_BATCH_SIZE = 500
#: Largest batch accepted: beyond this one transaction holds its locks for seconds.
MAX_BATCH_SIZE = 10_000
#: The soft-deletable tables, in the order a full purge visits them: users last, so that their
#: own soft-deleted sessions, tasks and so on go in bounded batches before a user cascades.
PURGEABLE: tuple[type[SoftDeleteModel], ...] = (
    SessionModel,
    TaskModel,
    SessionTemplateModel,
    ReportModel,
    MCPServerModel,
    UserModel,
)

_AGE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """Return the age written as ``<number><unit>`` (``30d``, ``12h``, ``90m``, ``45s``, ``2w``)."""
    match = _AGE.fullmatch(text.strip())
    if match is None:
        raise InvalidDataError.for_field("older_than", text, "expected a number and a unit s, m, h, d or w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def cutoff_for(older_than: timedelta | datetime, now: datetime | None = None) -> datetime:
    """Return the cutoff: an aware datetime as given, or ``now - older_than`` for an age."""
    if isinstance(older_than, datetime):
        if older_than.utcoffset() is None:
            raise InvalidDataError.for_field("older_than", older_than, "expected a timezone-aware datetime")
        return older_than
    if not _is_timedelta(older_than) or older_than < timedelta(0):
        raise InvalidDataError.for_field(
            "older_than", older_than, "expected an age >= 0 or an aware datetime"
        )
    return (now or utc_now()) - older_than


def _check_batch_size(batch_size: int, field: str = "batch_size") -> int:
    if not _is_int(batch_size) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidDataError.for_field(field, batch_size, f"must be between 1 and {MAX_BATCH_SIZE}")
    return batch_size


def _purgeable(model: type[SoftDeleteModel], cutoff: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    table = _table(model)
    return (table.c.deleted_at.is_not(None), table.c.deleted_at < cutoff)


def _table(model: type[SoftDeleteModel]) -> sa.Table:
    table = sa.inspect(model).local_table
    assert _is_table(table)
    return table


# These take ``object``: callers' values may not be what the annotations say.
def _is_timedelta(value: object) -> bool:
    return isinstance(value, timedelta)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_table(value: object) -> TypeGuard[sa.Table]:
    return isinstance(value, sa.Table)


async def delete_batch(
    session: AsyncSession,
    model: type[SoftDeleteModel],
    older_than: timedelta | datetime,
    *,
    limit: int = DEFAULT_BATCH_SIZE,
    after: UUID | None = None,
) -> list[UUID]:
    """Hard-delete up to ``limit`` rows soft-deleted before the cutoff, ids above ``after``; return their ids.

    The ids come back in ascending order: pass the last one as ``after`` to continue. Rows
    that reference them through an ``ON DELETE CASCADE`` foreign key go too. Runs in the
    caller's unit of work; the caller commits.
    """
    cutoff = cutoff_for(older_than)
    _check_batch_size(limit, "limit")
    table = _table(model)
    candidates = sa.select(table.c.id).where(*_purgeable(model, cutoff)).order_by(table.c.id).limit(limit)
    if after is not None:
        candidates = candidates.where(table.c.id > after)
    if session.get_bind().dialect.name == "postgresql":
        # Lock exactly the batch, skipping rows a concurrent unit holds (a restore in progress);
        # MATERIALIZED because "IN (SELECT ... LIMIT n FOR UPDATE)" may be re-run and claim more.
        locked = candidates.with_for_update(skip_locked=True).cte("purge_batch").prefix_with("MATERIALIZED")
        chosen: sa.Select[tuple[UUID]] = sa.select(locked.c.id)
    else:
        # SQLite: the unit's BEGIN IMMEDIATE already excludes every other writer.
        chosen = candidates
    # The cutoff is checked again on the row being deleted, not only on the candidate list.
    statement = (
        sa.delete(table).where(table.c.id.in_(chosen), *_purgeable(model, cutoff)).returning(table.c.id)
    )
    with translate_errors():
        deleted = sorted((await session.exec(statement)).scalars().all())
    # Instances of purged rows loaded in this unit are gone from the database: forget them.
    gone = set(deleted)
    for instance in list(session.sync_session.identity_map.values()):
        if isinstance(instance, model) and instance.id in gone:
            session.expunge(instance)
    return deleted


async def purge_deleted(
    db: Database,
    model: type[SoftDeleteModel],
    older_than: timedelta | datetime,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[int], object] | None = None,
) -> int:
    """Purge a table in batches of ``batch_size``, one unit of work each; return the rows deleted.

    The cutoff is computed once, at the start. ``on_batch`` is called with each batch's count
    after it committed (a progress bar). Stops when a batch finds nothing more to delete.
    """
    cutoff = cutoff_for(older_than)
    _check_batch_size(batch_size)
    after: UUID | None = None
    total = 0
    while True:
        async with db.session() as session:
            ids = await delete_batch(session, model, cutoff, limit=batch_size, after=after)
        if not ids:
            return total
        total += len(ids)
        after = ids[-1]
        if on_batch is not None:
            on_batch(len(ids))


async def count_purgeable(
    db: Database, model: type[SoftDeleteModel], older_than: timedelta | datetime
) -> dict[str, int]:
    """Return, per table, how many rows a purge of ``model`` would delete now (cascades included).

    The model's own table comes first; tables the purge would not touch are left out.
    """
    cutoff = cutoff_for(older_than)
    table = _table(model)
    ids = sa.select(table.c.id).where(*_purgeable(model, cutoff))
    reached: dict[sa.Table, list[sa.ColumnElement[bool]]] = {}
    for child, condition in _cascades(table, ids, depth=0):
        reached.setdefault(child, []).append(condition)
    counts: dict[str, int] = {}
    async with db.session(read_only=True) as session:
        with translate_errors():
            counts[table.name] = (
                await session.exec(select(sa.func.count()).select_from(ids.subquery()))
            ).one()
            for child, conditions in reached.items():
                query = select(sa.func.count()).select_from(child).where(sa.or_(*conditions))
                number = (await session.exec(query)).one()
                if number:
                    counts[child.name] = number
    return counts


def _cascades(
    table: sa.Table, ids: sa.Select[tuple[UUID]], depth: int
) -> Iterator[tuple[sa.Table, sa.ColumnElement[bool]]]:
    """Yield (table, condition) for the rows that ``ON DELETE CASCADE`` removes with ``ids`` of ``table``."""
    if depth > len(metadata.tables):  # a cycle of cascades: the schema has none, refuse to loop
        raise RuntimeError(f"cascading foreign keys loop through {table.name}")
    for child in metadata.sorted_tables:
        for key in child.foreign_keys:
            if key.column.table is table and (key.ondelete or "").upper() == "CASCADE":
                condition = key.parent.in_(ids)
                yield child, condition
                yield from _cascades(child, sa.select(child.c.id).where(condition), depth + 1)


def table_models(names: Sequence[str] | None) -> list[type[SoftDeleteModel]]:
    """Return the purgeable models with these table names (all of them for None), in purge order."""
    if not names:
        return list(PURGEABLE)
    known = {_table(model).name: model for model in PURGEABLE}
    for name in names:
        if name not in known:
            raise InvalidDataError.for_field("table", name, f"expected one of {', '.join(known)}")
    return [model for model in PURGEABLE if _table(model).name in names]


async def purge_with_progress(
    db: Database,
    models: Sequence[type[SoftDeleteModel]],
    older_than: timedelta | datetime,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    console: Console | None = None,
) -> dict[str, int]:
    """Count, then (unless ``dry_run``) purge each table with a progress bar; return rows purged per table.

    The counts printed first include the rows that cascade; with ``dry_run`` nothing is deleted
    and the returned counts are those that would be.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    console = console or Console()
    cutoff = cutoff_for(older_than)
    _check_batch_size(batch_size)
    planned = {model: await count_purgeable(db, model, cutoff) for model in models}
    table = Table(
        title=f"Soft-deleted before {cutoff:%Y-%m-%d %H:%M:%S} UTC" + (" (dry run)" if dry_run else "")
    )
    for name in ("table", "rows", "cascades to"):
        table.add_column(name, justify="left" if name == "table" else "right")
    for model, counts in planned.items():
        own = _table(model).name
        cascaded = ", ".join(f"{name} {n}" for name, n in counts.items() if name != own)
        table.add_row(own, str(counts[own]), cascaded or "-")
    console.print(table)
    if dry_run:
        return {_table(model).name: counts[_table(model).name] for model, counts in planned.items()}
    purged: dict[str, int] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        for model, counts in planned.items():
            name = _table(model).name
            task = progress.add_task(f"purging {name}", total=counts[name])

            def advance(n: int, task: TaskID = task) -> None:
                progress.advance(task, n)

            purged[name] = await purge_deleted(db, model, cutoff, batch_size=batch_size, on_batch=advance)
    console.print("Purged " + ", ".join(f"{n} {name}" for name, n in purged.items()) + ".", soft_wrap=True)
    return purged
