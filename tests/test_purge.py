"""Retention: ``purge_deleted`` and ``datalayer purge`` on SQLite and PostgreSQL.

Sessions soft-deleted long enough ago go with their children (foreign keys cascade); live
sessions, recently deleted ones and what references them stay. A purge is one short unit
per batch: interrupted, it loses only the batch in flight, and run again it finishes.
Concurrent writers (appending, soft-deleting, restoring) run during a purge: nothing live
is deleted and nothing purged comes back.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from datalayer import Database
from datalayer.cli import main
from datalayer.errors import InvalidDataError
from datalayer.factories import MessageFactory, ReportFactory, ToolCallFactory, persist
from datalayer.models import (
    MessageModel,
    ReportModel,
    SessionModel,
    ToolCallModel,
    UserModel,
)
from datalayer.purge import count_purgeable, parse_age, purge_deleted, table_models
from datalayer.repositories import MessageRepository, Repository, SessionRepository
from datalayer.testing import COUNTS
from datalayer.types import utc_now
from tests.helpers import make_session, make_user

SECTION = "purge (tests/test_purge.py)"
OLD = timedelta(days=40)
RETENTION = timedelta(days=30)


async def soft_deleted_sessions(db: Database, user_id: UUID, n: int, age: timedelta) -> list[UUID]:
    """Insert ``n`` sessions with 2 messages and a tool call each, soft-deleted ``age`` ago; return ids."""
    ids = []
    async with db.session() as s:
        for _ in range(n):
            session = await make_session(s, user_id)
            await persist(s, MessageFactory, 2, session_id=session.id)
            await persist(s, ToolCallFactory, 1, session_id=session.id, message_id=None)
            ids.append(session.id)
        await s.exec(
            sa.update(SessionModel).where(col(SessionModel.id).in_(ids)).values(deleted_at=utc_now() - age)
        )
    return ids


async def children_of(db: Database, session_ids: list[UUID]) -> int:
    """Return the number of messages and tool calls of these sessions."""
    async with db.session(read_only=True) as s:
        counts = [
            (await s.exec(select(sa.func.count()).where(col(model.session_id).in_(session_ids)))).one()
            for model in (MessageModel, ToolCallModel)
        ]
    return sum(counts)


async def surviving(db: Database, ids: list[UUID]) -> set[UUID]:
    """Return which of these sessions still exist (soft-deleted or not)."""
    async with db.session(read_only=True) as s:
        return set((await s.exec(select(SessionModel.id).where(col(SessionModel.id).in_(ids)))).all())


async def test_purge_removes_old_soft_deleted_rows_and_their_children(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s)
        live = await make_session(s, user.id)
        await persist(s, MessageFactory, 3, session_id=live.id)
    old = await soft_deleted_sessions(db, user.id, 5, OLD)
    recent = await soft_deleted_sessions(db, user.id, 2, timedelta(days=1))
    async with db.session() as s:
        report = (await persist(s, ReportFactory, 1, user_id=user.id, session_id=old[0]))[0]

    counts = await count_purgeable(db, SessionModel, RETENTION)
    assert counts["sessions"] == 5
    assert counts["messages"] == 10
    assert counts["tool_calls"] == 5

    assert await purge_deleted(db, SessionModel, RETENTION, batch_size=2) == 5
    assert await surviving(db, old) == set()
    assert await children_of(db, old) == 0
    assert await surviving(db, [live.id, *recent]) == {live.id, *recent}
    assert await children_of(db, [live.id]) == 3
    assert await children_of(db, recent) == 6
    async with db.session(read_only=True) as s:
        # A report of a purged session stays; its foreign key is SET NULL, not CASCADE.
        kept = await Repository(ReportModel, s).get(report.id)
        assert kept.session_id is None
        # Purged rows cannot come back.
        assert await SessionRepository(s).get_by_id(old[0], include_deleted=True) is None
    async with db.session() as s:
        assert not await SessionRepository(s).restore(old[1])
    # Nothing older is left: a second purge finds nothing.
    assert await purge_deleted(db, SessionModel, RETENTION) == 0
    COUNTS.add(SECTION, "sessions_purged", 5)


async def test_purging_a_user_cascades_two_levels(db: Database) -> None:
    async with db.session() as s:
        gone, kept = await make_user(s), await make_user(s)
    sessions_of_gone = await soft_deleted_sessions(db, gone.id, 2, timedelta(0))  # too recent themselves
    sessions_of_kept = await soft_deleted_sessions(db, kept.id, 1, timedelta(0))
    async with db.session() as s:
        await s.exec(
            sa.update(UserModel).where(col(UserModel.id) == gone.id).values(deleted_at=utc_now() - OLD)
        )
    counts = await count_purgeable(db, UserModel, RETENTION)
    assert (counts["users"], counts["sessions"], counts["messages"], counts["tool_calls"]) == (1, 2, 4, 2)
    assert await purge_deleted(db, UserModel, RETENTION) == 1
    assert await surviving(db, [*sessions_of_gone, *sessions_of_kept]) == set(sessions_of_kept)
    assert await children_of(db, sessions_of_gone) == 0
    assert await children_of(db, sessions_of_kept) == 3


async def test_repository_method_deletes_one_batch_in_the_callers_unit(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s)
    old = await soft_deleted_sessions(db, user.id, 5, OLD)
    async with db.session() as s:
        loaded = await SessionRepository(s).get(old[0], include_deleted=True)
        first = await SessionRepository(s).purge_deleted(older_than=RETENTION, limit=2)
        assert first == sorted(old)[:2]
        second = await SessionRepository(s).purge_deleted(older_than=RETENTION, limit=2, after=first[-1])
        assert second == sorted(old)[2:4]
        if loaded.id in first + second:
            # The unit no longer holds an instance of a row that is gone.
            assert await SessionRepository(s).get_by_id(loaded.id, include_deleted=True) is None
    assert await surviving(db, old) == {sorted(old)[4]}
    # The caller's unit decides: rolled back, the batch did not happen.
    with pytest.raises(RuntimeError):
        async with db.session() as s:
            assert await SessionRepository(s).purge_deleted(older_than=RETENTION) == [sorted(old)[4]]
            raise RuntimeError("changed my mind")
    assert await surviving(db, old) == {sorted(old)[4]}


async def test_bad_arguments_name_the_field(db: Database) -> None:
    async with db.session() as s:
        repository = SessionRepository(s)
        with pytest.raises(InvalidDataError, match="older_than"):
            await repository.purge_deleted(older_than=timedelta(days=-1))
        with pytest.raises(InvalidDataError, match="older_than"):
            await repository.purge_deleted(older_than=utc_now().replace(tzinfo=None))
        with pytest.raises(InvalidDataError, match="limit"):
            await repository.purge_deleted(older_than=RETENTION, limit=0)
    with pytest.raises(InvalidDataError, match="batch_size"):
        await purge_deleted(db, SessionModel, RETENTION, batch_size=10**9)
    with pytest.raises(InvalidDataError, match="older_than"):
        parse_age("30 days")
    with pytest.raises(InvalidDataError, match="table"):
        table_models(["messages"])
    assert parse_age("30d") == timedelta(days=30)
    assert parse_age("2w") == timedelta(weeks=2)


async def test_interrupted_purge_loses_only_the_batch_in_flight_and_resumes(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s)
    old = await soft_deleted_sessions(db, user.id, 12, OLD)
    batches: list[int] = []

    def cancel_after_two(n: int) -> None:
        batches.append(n)
        if len(batches) == 2:
            task.cancel()  # delivered inside the third batch's unit of work, before its commit

    task = asyncio.create_task(
        purge_deleted(db, SessionModel, RETENTION, batch_size=3, on_batch=cancel_after_two)
    )
    with pytest.raises(asyncio.CancelledError):
        await task
    left = await surviving(db, old)
    assert len(left) == 12 - 6
    assert await children_of(db, sorted(left)) == 3 * len(left)
    # Run again: it picks up where the first stopped.
    assert await purge_deleted(db, SessionModel, RETENTION, batch_size=3) == 6
    assert await surviving(db, old) == set()
    COUNTS.add(SECTION, "purges_interrupted")


async def test_concurrent_writers_during_a_purge(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s)
        live = [(await make_session(s, user.id)).id for _ in range(3)]
    old = await soft_deleted_sessions(db, user.id, 60, OLD)
    to_restore = old[::10]
    async with db.session() as s:
        # Writers soft-delete these during the purge: too recent to be purged.
        to_soft_delete = [(await make_session(s, user.id)).id for _ in range(len(to_restore))]
    appended: dict[UUID, int] = dict.fromkeys(live, 0)
    restored: dict[UUID, bool] = {}
    done = asyncio.Event()

    async def append_messages() -> None:
        while not done.is_set():
            for session_id in live:
                async with db.session() as s:
                    await MessageRepository(s).append(session_id, message_type="assistant", content={})
                appended[session_id] += 1
            await asyncio.sleep(0)

    async def restore_and_soft_delete() -> None:
        for restore_id, delete_id in zip(to_restore, to_soft_delete, strict=True):
            async with db.session() as s:
                restored[restore_id] = await SessionRepository(s).restore(restore_id)
            async with db.session() as s:
                assert await SessionRepository(s).soft_delete(delete_id)
            await asyncio.sleep(0.005)

    writers = [asyncio.create_task(append_messages()), asyncio.create_task(restore_and_soft_delete())]
    try:
        purged = await purge_deleted(db, SessionModel, RETENTION, batch_size=4)
        await writers[1]
    finally:
        done.set()
        await asyncio.gather(*writers)

    won = {session_id for session_id, ok in restored.items() if ok}
    # A restore either came first (the session is live, with its children) or found it purged.
    assert await surviving(db, old) == won
    assert await children_of(db, sorted(won)) == 3 * len(won)
    assert purged == len(old) - len(won)
    async with db.session(read_only=True) as s:
        for session_id, n in appended.items():
            numbers = (
                await s.exec(
                    select(MessageModel.sequence_number).where(MessageModel.session_id == session_id)
                )
            ).all()
            assert sorted(numbers) == list(range(1, n + 1))
        # Soft-deleted during the purge but recent: kept, still soft-deleted.
        kept = await Repository(SessionModel, s).get_all(
            filters=[col(SessionModel.id).in_(to_soft_delete)], include_deleted=True
        )
        assert len(kept) == len(to_soft_delete)
        assert all(session.deleted_at is not None for session in kept)
        assert await Repository(UserModel, s).exists(user.id)
    # Nothing purged came back, and nothing older than the cutoff is left but the restored.
    assert await count_purgeable(db, SessionModel, RETENTION) == {"sessions": 0}
    COUNTS.add(SECTION, "restores_racing_a_purge", len(restored))
    COUNTS.add(SECTION, "restores_before_the_purge_got_there", len(won))
    COUNTS.add(SECTION, "appends_during_a_purge", sum(appended.values()))


def test_cli_purge_dry_run_then_purge(empty_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", empty_url, "migrate"]) == 0

    async def prepare() -> list[UUID]:
        async with Database(empty_url) as db:
            async with db.session() as s:
                user = await make_user(s)
            return await soft_deleted_sessions(db, user.id, 3, OLD)

    old = asyncio.run(prepare())
    capsys.readouterr()
    assert main(["--database-url", empty_url, "purge", "--older-than", "30d", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out
    assert "messages 6" in out

    async def left() -> set[UUID]:
        async with Database(empty_url) as db:
            return await surviving(db, old)

    assert asyncio.run(left()) == set(old)
    status = main(
        [
            "--database-url",
            empty_url,
            "purge",
            "--older-than",
            "30d",
            "--table",
            "sessions",
            "--batch-size",
            "2",
        ]
    )
    assert status == 0
    assert "Purged 3 sessions." in capsys.readouterr().out
    assert asyncio.run(left()) == set()
    with pytest.raises(SystemExit) as usage:
        main(["--database-url", empty_url, "purge", "--older-than", "soon"])
    assert usage.value.code == 2
    assert "older_than" in capsys.readouterr().err
