"""A unit of work cancelled at any point leaves no lock, no checked-out connection and no half write.

Each mode (``asyncio.timeout``, ``task.cancel()``, anyio ``move_on_after``) cancels 200 units
at points swept across the unit (before, during and after its statements and its COMMIT).
After each: the next writer gets the lock (SQLite: a separate sqlite3 connection's
``BEGIN IMMEDIATE``; the garbage collector is off during the loop, so a lock that only GC
would release shows up), the pool holds no connection, and the unit's rows are all there
or none (none when the cancellation landed before the COMMIT). PostgreSQL: no session of
the database is left "idle in transaction".
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import anyio
import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from datalayer import Database
from datalayer.models import UserModel
from datalayer.repositories import Repository

ROUNDS = 200
ROWS_PER_UNIT = 3


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Turn the garbage collector off: a lock that only GC releases must not be hidden by it."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def write_unit(db: Database, tag: str, reached_commit: list[bool]) -> None:
    """Insert ROWS_PER_UNIT users tagged ``tag`` in one unit; note when the body has finished."""
    async with db.session() as s:
        users = Repository(UserModel, s)
        for j in range(ROWS_PER_UNIT):
            await users.create(email=f"{tag}-{j}@example.com", username=f"{tag}-{j}")
        reached_commit.append(True)


def delay_for(i: int, span: float) -> float:
    """Return a delay sweeping 0 to 1.2 x ``span`` (a whole unit's seconds or turns): before, in, after it.

    Scaled to the measured unit time, not fixed: on a fast, idle machine a fixed sweep would
    mostly land after the COMMIT and stop testing cancellation mid-unit.
    """
    return (i % 60) / 60 * 1.2 * span


@dataclass(frozen=True)
class Span:
    """How long an uncancelled unit takes on this machine, now: seconds and event-loop turns."""

    seconds: float
    turns: int


async def cancelled_by_timeout(db: Database, tag: str, i: int, reached: list[bool], span: Span) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay_for(i, span.seconds)):
            await write_unit(db, tag, reached)


async def cancelled_by_task_cancel(db: Database, tag: str, i: int, reached: list[bool], span: Span) -> None:
    task = asyncio.create_task(write_unit(db, tag, reached))
    # Cancel after a varying number of event-loop turns, swept like the delays (a fixed
    # sweep stops reaching into the unit as soon as a unit takes fewer turns).
    for _ in range(round(delay_for(i, span.turns))):
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def cancelled_by_anyio(db: Database, tag: str, i: int, reached: list[bool], span: Span) -> None:
    # anyio cancels again at every await inside the scope, cleanup included.
    with anyio.move_on_after(delay_for(i, span.seconds)):
        await write_unit(db, tag, reached)


MODES: dict[str, Callable[[Database, str, int, list[bool], Span], Awaitable[None]]] = {
    "asyncio.timeout": cancelled_by_timeout,
    "task.cancel": cancelled_by_task_cancel,
    "anyio.move_on_after": cancelled_by_anyio,
}


async def unit_span(db: Database) -> Span:
    """Return the median time and event-loop turns of an uncancelled unit on this machine, now."""
    times, turns = [], []
    for k in range(7):
        start = time.perf_counter()
        task = asyncio.create_task(write_unit(db, f"warm{k}", []))
        count = 0
        while not task.done():
            await asyncio.sleep(0)
            count += 1
        await task
        times.append(time.perf_counter() - start)
        turns.append(count)
    return Span(seconds=statistics.median(times), turns=round(statistics.median(turns)))


async def stored_with_tag(db: Database, tag: str) -> int:
    async with db.session(read_only=True) as s:
        statement = select(sa.func.count()).where(col(UserModel.username).startswith(f"{tag}-"))
        return (await s.exec(statement)).one()


async def idle_in_transaction(db: Database) -> int:
    async with db.engine.connect() as conn:
        result = await conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            )
        )
        count: int = result.scalar_one()
        await conn.rollback()
    return count


def checked_out(db: Database) -> int:
    """Return how many connections the Database's pool has handed out."""
    pool = db.engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    return pool.checkedout()


def next_writer_gets_lock(path: str) -> bool:
    """Return True if a separate writer takes SQLite's write lock (waiting at most 5 s)."""
    other = sqlite3.connect(path, timeout=5, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_cancelled_units_leave_nothing_behind(db: Database, mode: str, no_gc: None) -> None:
    cancel = MODES[mode]
    path = db.url.database
    cancelled_before_commit = 0
    span = await unit_span(db)
    for i in range(ROUNDS):
        tag = f"c{i}"
        reached: list[bool] = []
        await cancel(db, tag, i, reached, span)
        assert checked_out(db) == 0, f"round {i}: a connection is still checked out"
        if db.backend == "sqlite":
            assert path is not None
            assert next_writer_gets_lock(path), f"round {i}: the write lock is still held"
        stored = await stored_with_tag(db, tag)
        if not reached:
            cancelled_before_commit += 1
            assert stored == 0, f"round {i}: a unit cancelled before its commit stored rows"
        else:
            assert stored in (0, ROWS_PER_UNIT), f"round {i}: half a unit stored"
    if db.backend == "postgresql":
        assert await idle_in_transaction(db) == 0
    # The sweep must really cancel units mid-way, not only before they start or after they end.
    assert cancelled_before_commit > ROUNDS // 4
    # And the database still works normally.
    await write_unit(db, "after", [])
    assert await stored_with_tag(db, "after") == ROWS_PER_UNIT
