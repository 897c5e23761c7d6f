"""Concurrency under load: 50 workers for at most 30 seconds, then the invariants.

Each worker runs units of work of one or two operations, picked at random (seeded):
``MessageRepository.append``, ``SessionTemplateRepository.update_usage_stats``,
``ToolCallRepository.update_status`` and ``soft_delete`` of shared rows. A unit that
fails (a deadlock between two-operation units, say) must leave nothing behind, so only
the operations of committed units are counted. Afterwards: message numbers are 1..n per
session with n the committed appends, usage counters equal the committed increments,
each soft delete took effect exactly once and no row is both live and deleted, and every
tool call holds a status some committed unit gave it. ``claim_pending`` hands each
archive to exactly one of several concurrent workers while a producer keeps adding
archives, on both backends. Counts are printed in the terminal summary.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from sqlmodel import col, select

from datalayer import Database
from datalayer.errors import ConflictError, DatabaseUnavailableError
from datalayer.models import MessageModel, ReportModel, SessionTemplateModel, ToolCallModel
from datalayer.models.enums import ArchiveStatus, ToolCallStatus
from datalayer.repositories import (
    MessageRepository,
    ReportRepository,
    SessionTemplateRepository,
    ToolCallRepository,
    WorkingDirectoryArchiveRepository,
)
from datalayer.testing import COUNTS
from tests.conftest import THROUGH_PGBOUNCER
from tests.helpers import make_session, make_user

SECTION = "load (tests/test_load.py)"
WORKERS = 50
MAX_SECONDS = 30.0
UNITS_PER_WORKER = 40
SESSIONS = 8
TEMPLATES = 5
TOOL_CALLS = 60
REPORTS = 150
STATUSES = [s for s in ToolCallStatus if s is not ToolCallStatus.PENDING]


@pytest.fixture
async def wide(db: Database) -> AsyncIterator[Database]:
    """Return a second Database on the same database with a pool for every worker."""
    url = db.url.render_as_string(hide_password=False)
    pool: dict[str, Any] = {"pool_size": WORKERS, "max_overflow": 0} if db.backend == "postgresql" else {}
    database = Database(url, pgbouncer=THROUGH_PGBOUNCER and db.backend == "postgresql", **pool)
    try:
        yield database
    finally:
        await database.dispose()


class Ledger:
    """What committed units did, recorded only after their commit succeeded."""

    def __init__(self) -> None:
        self.appends: Counter[UUID] = Counter()
        self.increments: Counter[UUID] = Counter()
        self.deleted: Counter[UUID] = Counter()
        self.statuses: defaultdict[UUID, set[ToolCallStatus]] = defaultdict(set)
        self.committed = 0
        self.failed: Counter[str] = Counter()
        self.operations: Counter[str] = Counter()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_fifty_workers_keep_every_invariant(db: Database, wide: Database) -> None:
    async with db.session() as s:
        user = await make_user(s)
        sessions = [(await make_session(s, user_id=user.id)).id for _ in range(SESSIONS)]
        templates = [
            (await SessionTemplateRepository(s).create(user_id=user.id, name=f"t{i}")).id
            for i in range(TEMPLATES)
        ]
        calls = [
            (
                await ToolCallRepository(s).create(
                    session_id=sessions[i % SESSIONS], tool_use_id=f"tu-{i}", tool_name="Bash"
                )
            ).id
            for i in range(TOOL_CALLS)
        ]
        reports = [
            row.id
            for row in await ReportRepository(s).create_many(
                [{"user_id": user.id, "title": f"r{i}", "report_type": "k"} for i in range(REPORTS)]
            )
        ]
    ledger = Ledger()
    deadline = time.monotonic() + MAX_SECONDS

    async def worker(n: int) -> None:
        rng = random.Random(n)
        for i in range(UNITS_PER_WORKER):
            if time.monotonic() > deadline:
                return
            kinds = rng.sample(["append", "usage", "status", "delete"], k=rng.choice([1, 1, 2]))
            done: list[tuple[str, UUID, object]] = []
            try:
                async with wide.session() as s:
                    for kind in kinds:
                        if kind == "append":
                            target = rng.choice(sessions)
                            await MessageRepository(s).append(
                                target, message_type="assistant", content={"worker": n, "unit": i}
                            )
                            done.append((kind, target, None))
                        elif kind == "usage":
                            target = rng.choice(templates)
                            assert await SessionTemplateRepository(s).update_usage_stats(target)
                            done.append((kind, target, None))
                        elif kind == "status":
                            target, status = rng.choice(calls), rng.choice(STATUSES)
                            assert await ToolCallRepository(s).update_status(target, status)
                            done.append((kind, target, status))
                        else:
                            target = rng.choice(reports)
                            changed = await ReportRepository(s).soft_delete(target)
                            done.append((kind, target, changed))
                        await asyncio.sleep(0)  # let other workers interleave inside units
            except (ConflictError, DatabaseUnavailableError) as exc:
                ledger.failed[type(exc).__name__] += 1
                continue
            ledger.committed += 1
            for kind, target, extra in done:
                ledger.operations[kind] += 1
                if kind == "append":
                    ledger.appends[target] += 1
                elif kind == "usage":
                    ledger.increments[target] += 1
                elif kind == "status":
                    assert isinstance(extra, ToolCallStatus)
                    ledger.statuses[target].add(extra)
                elif extra:
                    ledger.deleted[target] += 1

    await asyncio.gather(*(worker(n) for n in range(WORKERS)))
    COUNTS.add(SECTION, "workers", WORKERS)
    COUNTS.add(SECTION, "units_committed", ledger.committed)
    for name, n in ledger.failed.items():
        COUNTS.add(SECTION, f"units_failed_{name}", n)
    for kind, n in ledger.operations.items():
        COUNTS.add(SECTION, f"committed_{kind}", n)
    assert ledger.committed > WORKERS  # the load really ran

    async with db.session(read_only=True) as s:
        # Sequence numbers: 1..n per session, n = committed appends (gap-free, no duplicates).
        rows = (await s.exec(select(MessageModel.session_id, MessageModel.sequence_number))).all()
        numbers: defaultdict[UUID, list[int]] = defaultdict(list)
        for session_id, number in rows:
            numbers[session_id].append(number)
        for session_id in sessions:
            got = sorted(numbers[session_id])
            assert got == list(range(1, ledger.appends[session_id] + 1)), session_id
        # Counters equal the committed increments.
        usage = dict((await s.exec(select(SessionTemplateModel.id, SessionTemplateModel.usage_count))).all())
        assert usage == {t: ledger.increments[t] for t in templates}
        # Soft deletes: each took effect once; no row both live and deleted.
        assert all(n == 1 for n in ledger.deleted.values())
        deleted = set(
            (await s.exec(select(ReportModel.id).where(col(ReportModel.deleted_at).is_not(None)))).all()
        )
        live = {r.id for r in await ReportRepository(s).get_all(limit=REPORTS)}
        assert deleted == set(ledger.deleted)
        assert live.isdisjoint(deleted)
        assert live | deleted == set(reports)
        # Tool calls: a status some committed unit wrote, or still pending if none did.
        for call in (await s.exec(select(ToolCallModel))).all():
            written = ledger.statuses.get(call.id)
            if written:
                assert call.status in written, call.id
            else:
                assert call.status is ToolCallStatus.PENDING
            assert (call.completed_at is not None) >= (
                call.status in (ToolCallStatus.SUCCESS, ToolCallStatus.ERROR)
            )


async def test_claim_pending_gives_each_archive_to_one_worker(db: Database, wide: Database) -> None:
    async with db.session() as s:
        parent = (await make_session(s)).id
    produced: list[UUID] = []
    claimed: list[list[UUID]] = [[] for _ in range(6)]
    producing = True

    async def producer() -> None:
        nonlocal producing
        for _ in range(10):
            async with wide.session() as s:
                batch = await WorkingDirectoryArchiveRepository(s).create_many(
                    [{"session_id": parent} for _ in range(8)]
                )
            produced.extend(a.id for a in batch)
            await asyncio.sleep(0.005)
        producing = False

    async def consumer(n: int) -> None:
        idle = 0
        while idle < 3:
            async with wide.session() as s:
                batch = await WorkingDirectoryArchiveRepository(s).claim_pending(limit=3)
            claimed[n].extend(a.id for a in batch)
            assert all(a.status is ArchiveStatus.IN_PROGRESS for a in batch)
            if not batch:
                idle = idle + 1 if not producing else 0
                await asyncio.sleep(0.005)

    await asyncio.gather(producer(), *(consumer(n) for n in range(6)))
    everything = [archive_id for mine in claimed for archive_id in mine]
    COUNTS.add(SECTION, f"archives_claimed_{db.backend}", len(everything))
    assert len(everything) == len(set(everything)) == len(produced) == 80
    assert set(everything) == set(produced)
    async with db.session(read_only=True) as s:
        assert await WorkingDirectoryArchiveRepository(s).get_pending_archives() == []
