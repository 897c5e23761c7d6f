"""Primary failover and replica loss, on real PostgreSQL servers of this module's own.

Failover: a primary with a synchronous standby (``synchronous_commit=on``), a ``Database``
on the multi-host URL ``?host=primary&host=standby&target_session_attrs=read-write``, and
8 writers appending messages and adding usage. The primary is stopped with ``pg_ctl stop
-m immediate`` and the standby promoted. Every unit that returned must be on the new
primary, every unit that failed must have failed with ``DatabaseUnavailableError``, writes
must work again without restarting anything, and message numbers stay gap-free. Writers
retry a failed unit with the same client-chosen message id, which makes the retry idempotent
(a unit whose commit landed but whose reply was lost is not written twice).
``DATALAYER_FAILOVER_RUNS=5`` repeats the failover on fresh servers (default: once); the
figures of each run are printed in the terminal summary.

Replica loss: ``replica_url`` lists two replicas and then the primary with
``target_session_attrs=prefer-standby``; read-only units move to the second replica when
the first goes away, then to the primary (still refusing writes).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlmodel import select

from datalayer import Database
from datalayer.errors import DatabaseUnavailableError, ReadOnlyError
from datalayer.models import MessageModel, MessageType, SessionModel, UserModel
from datalayer.repositories import MessageRepository, Repository, SessionRepository
from datalayer.testing import (
    COUNTS,
    PostgresNotAvailable,
    TemporaryPostgres,
    TemporaryReplica,
    TemporarySyncStandby,
)
from datalayer.types import uuid7
from tests.helpers import make_session, make_user, missing_prerequisite

SECTION = "failover (tests/test_failover.py)"
WRITERS = 8
SESSIONS = 4  # two writers per session: appends to one session contend for its lock
RETRY_PAUSE = 0.05  # what a client would wait before retrying a failed unit
RUNS = int(os.environ.get("DATALAYER_FAILOVER_RUNS", "1"))


def multi_host_url(database: str, *servers: TemporaryPostgres, attrs: str) -> str:
    """Return the multi-host asyncpg URL of ``servers``, tried in order, with ``target_session_attrs``."""
    hosts = "&".join(f"host=127.0.0.1:{server.port}" for server in servers)
    return f"postgresql+asyncpg://postgres@/{database}?{hosts}&target_session_attrs={attrs}"


@dataclass
class Ledger:
    """What the writers saw: acknowledged message ids with their completion times, and failures."""

    acked: dict[UUID, float] = field(default_factory=dict)
    pending: list[UUID] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    found_committed_on_retry: int = 0
    unexpected: list[BaseException] = field(default_factory=list)


async def writer(db: Database, session_id: UUID, ledger: Ledger, stop: asyncio.Event) -> None:
    """Append a message and count it in the session's usage, one unit each, until told to stop.

    A failed unit is retried with the same message id, the client-side key that makes the
    retry idempotent: when the first attempt did commit (its reply was lost), the retry
    finds the message and writes nothing, so neither the message nor the usage is doubled.
    """
    message_id = uuid7()
    while not stop.is_set():
        try:
            async with db.session() as s:
                messages = MessageRepository(s)
                if await messages.exists(message_id):
                    ledger.found_committed_on_retry += 1
                else:
                    await messages.append(
                        session_id, id=message_id, message_type=MessageType.ASSISTANT, content={"n": 1}
                    )
                    await SessionRepository(s).add_usage(session_id, total_messages=1, api_output_tokens=7)
        except DatabaseUnavailableError:
            ledger.failures["DatabaseUnavailableError"] += 1
            await asyncio.sleep(RETRY_PAUSE)
        except Exception as exc:  # recorded, then asserted empty: the test names what escaped
            ledger.unexpected.append(exc)
            await asyncio.sleep(RETRY_PAUSE)
        else:
            ledger.acked[message_id] = time.monotonic()
            message_id = uuid7()
    if message_id not in ledger.acked:
        ledger.pending.append(message_id)


@dataclass
class Figures:
    """One failover run, as reported."""

    acknowledged: int
    lost: int
    failed_units: int
    found_committed_on_retry: int
    first_write_after_promotion: float
    first_write_after_stop: float


async def fail_over_once(primary: TemporaryPostgres, standby: TemporarySyncStandby) -> Figures:
    """Run the writers, kill the primary, promote the standby, check the new primary; return figures."""
    url = multi_host_url(primary.database, primary, standby, attrs="read-write")
    async with Database(url, connect_timeout=5) as db:
        await db.create_all()
        async with db.session() as s:
            user = await make_user(s)
            session_ids = [(await make_session(s, user.id)).id for _ in range(SESSIONS)]
        ledger = Ledger()
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(writer(db, session_ids[i % SESSIONS], ledger, stop)) for i in range(WRITERS)
        ]
        try:
            async with asyncio.timeout(30):
                while len(ledger.acked) < 80:
                    await asyncio.sleep(0.01)
            await asyncio.to_thread(primary.stop, "immediate")
            stopped_at = time.monotonic()
            COUNTS.add(SECTION, "primaries_killed")
            await asyncio.to_thread(standby.promote)
            promoted_at = time.monotonic()
            COUNTS.add(SECTION, "standbys_promoted")
            # Writes resume by themselves: wait for 40 more acknowledged units on the new primary.
            async with asyncio.timeout(30):
                while sum(1 for t in ledger.acked.values() if t > promoted_at) < 40:
                    await asyncio.sleep(0.01)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        assert not ledger.unexpected, f"units failed with other errors: {ledger.unexpected[:3]!r}"

        async with db.session(read_only=True) as s:
            assert not (await s.exec(select(sa.func.pg_is_in_recovery()))).one()
            assert (await s.exec(select(sa.func.inet_server_port()))).one() == standby.port
            rows = (
                await s.exec(select(MessageModel.id, MessageModel.session_id, MessageModel.sequence_number))
            ).all()
            usage = dict((await s.exec(select(SessionModel.id, SessionModel.total_messages))).all())

    stored = {row[0] for row in rows}
    lost = set(ledger.acked) - stored
    assert not lost, f"{len(lost)} acknowledged writes are missing on the new primary"
    # Nothing but what the writers wrote; the one unit each writer had in flight at the end may
    # or may not be there (its outcome is unknown: it was not retried).
    assert stored - set(ledger.acked) <= set(ledger.pending)
    numbers: dict[UUID, list[int]] = {}
    for _, session_id, number in rows:
        numbers.setdefault(session_id, []).append(number)
    for session_id in session_ids:
        got = sorted(numbers.get(session_id, []))
        assert got == list(range(1, len(got) + 1)), f"gap or duplicate in session {session_id}"
        # The message and its usage were one unit, retried idempotently: counted exactly once.
        assert usage[session_id] == len(got)
    first_after_promotion = min(t for t in ledger.acked.values() if t > promoted_at)
    first_after_stop = min(t for t in ledger.acked.values() if t > stopped_at)
    failed = sum(ledger.failures.values())
    COUNTS.add(SECTION, "acknowledged_writes", len(ledger.acked))
    COUNTS.add(SECTION, "units_failed_unavailable", failed)
    return Figures(
        acknowledged=len(ledger.acked),
        lost=len(lost),
        failed_units=failed,
        found_committed_on_retry=ledger.found_committed_on_retry,
        first_write_after_promotion=first_after_promotion - promoted_at,
        first_write_after_stop=first_after_stop - stopped_at,
    )


@pytest.fixture
def failover_pair() -> Iterator[tuple[TemporaryPostgres, TemporarySyncStandby]]:
    """Start a primary (synchronous_commit=on) and its synchronous standby; remove both afterwards."""
    try:
        primary = TemporaryPostgres(database="failover", settings={"synchronous_commit": "on"})
    except PostgresNotAvailable as exc:
        missing_prerequisite(exc)
    standby = TemporarySyncStandby(primary)
    try:
        primary.start()
        standby.start()
        yield primary, standby
    finally:
        standby.cleanup()
        primary.cleanup()


@pytest.mark.parametrize("run", range(1, RUNS + 1))
async def test_failover_loses_no_acknowledged_write(
    failover_pair: tuple[TemporaryPostgres, TemporarySyncStandby], run: int
) -> None:
    figures = await fail_over_once(*failover_pair)
    assert figures.lost == 0
    print(f"\nfailover run {run}: {figures}")
    COUNTS.add(SECTION, f"run{run}_acked", figures.acknowledged)
    COUNTS.add(
        SECTION, f"run{run}_first_write_after_promotion_ms", round(figures.first_write_after_promotion * 1000)
    )


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[TemporaryPostgres, TemporaryReplica, TemporaryReplica]]:
    """Start a primary and two streaming replicas of it."""
    try:
        primary = TemporaryPostgres(database="replicas")
    except PostgresNotAvailable as exc:
        missing_prerequisite(exc)
    replicas = [TemporaryReplica(primary), TemporaryReplica(primary)]
    try:
        primary.start()
        for replica in replicas:
            replica.start()
        yield primary, replicas[0], replicas[1]
    finally:
        for replica in replicas:
            replica.cleanup()
        primary.cleanup()


async def create_schema(primary: TemporaryPostgres, *replicas: TemporaryReplica) -> None:
    """Create the tables on the primary and wait until every replica has replayed them."""
    async with Database(primary.url) as db:
        await db.create_all()
        async with db.engine.connect() as conn:
            target = await conn.scalar(sa.text("SELECT pg_current_wal_insert_lsn()"))
    for replica in replicas:
        async with Database(replica.url) as db, asyncio.timeout(30):
            replayed = sa.text("SELECT pg_last_wal_replay_lsn() >= CAST(:target AS pg_lsn)")
            while True:
                async with db.engine.connect() as conn:
                    if await conn.scalar(replayed, {"target": target}):
                        break
                await asyncio.sleep(0.02)


async def served_by(db: Database) -> tuple[int, bool] | None:
    """Return (port, in recovery) of the server a read-only unit ran on, or None if it failed unavailable."""
    try:
        async with db.session(read_only=True) as s:
            port, in_recovery = (
                await s.exec(select(sa.func.inet_server_port(), sa.func.pg_is_in_recovery()))
            ).one()
            await Repository(UserModel, s).count()
    except DatabaseUnavailableError:
        COUNTS.add(SECTION, "reads_failed_unavailable")
        return None
    return int(port), bool(in_recovery)


async def test_reads_move_to_the_next_replica_then_to_the_primary(
    replicated: tuple[TemporaryPostgres, TemporaryReplica, TemporaryReplica],
) -> None:
    primary, first, second = replicated
    await create_schema(primary, first, second)
    replica_url = multi_host_url(primary.database, first, second, primary, attrs="prefer-standby")
    async with Database(primary.url, replica_url=replica_url, connect_timeout=5, pool_size=2) as db:
        assert await served_by(db) == (first.port, True)
        for gone, next_server in ((first, (second.port, True)), (second, (primary.port, False))):
            gone.stop("immediate")
            COUNTS.add(SECTION, "replicas_stopped")
            # The unit that finds its pooled connection dead fails (and empties the pool); the next moves on.
            assert await served_by(db) in (None, next_server)
            assert await served_by(db) == next_server
        # Falling back to the primary keeps read-only units read-only.
        with pytest.raises(ReadOnlyError):
            async with db.session(read_only=True) as s:
                await Repository(UserModel, s).create(email="x@example.com", username="x")
        with pytest.raises(ReadOnlyError):
            async with db.session(read_only=True) as s:
                await (await s.connection()).execute(sa.text("CREATE TABLE nope (x int)"))
        first.start()
        second.start()


async def test_standby_only_reads_fail_unavailable_when_no_replica_is_left(
    replicated: tuple[TemporaryPostgres, TemporaryReplica, TemporaryReplica],
) -> None:
    primary, first, second = replicated
    # The other policy: never load the primary with reads; fail instead.
    replica_url = multi_host_url(primary.database, first, primary, attrs="standby")
    await create_schema(primary, first, second)
    async with Database(primary.url, replica_url=replica_url, connect_timeout=5, pool_pre_ping=True) as db:
        assert await served_by(db) == (first.port, True)
        first.stop("immediate")
        try:
            with pytest.raises(DatabaseUnavailableError):
                async with db.session(read_only=True) as s:
                    await Repository(UserModel, s).count()
            # Writes are not affected.
            async with db.session() as s:
                await make_user(s)
        finally:
            first.start()
        assert await served_by(db) == (first.port, True)
    # Every listed host answers but none is a standby: also unavailable, not a generic error.
    only_primary = multi_host_url(primary.database, primary, attrs="standby")
    async with Database(primary.url, replica_url=only_primary, connect_timeout=5) as db:
        with pytest.raises(DatabaseUnavailableError, match="target attribute"):
            async with db.session(read_only=True) as s:
                await Repository(UserModel, s).count()
