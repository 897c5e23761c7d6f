"""Task, TaskExecution, Report, MCPServer, SessionTemplate, archive and snapshot repositories."""

from __future__ import annotations

from datetime import datetime
from typing import Any, assert_type
from uuid import UUID, uuid4

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database
from datalayer.errors import InvalidDataError
from datalayer.models import ArchiveStatus, ReportModel, SessionTemplateModel, TaskModel
from datalayer.models.inputs import TaskExecutionStatusValue
from datalayer.repositories import (
    ExecutionStats,
    MCPServerRepository,
    ReportRepository,
    SessionMetricsSnapshotRepository,
    SessionTemplateRepository,
    TaskExecutionRepository,
    TaskRepository,
    WorkingDirectoryArchiveRepository,
)
from tests.helpers import at, make_session, make_user

# -- TaskRepository ------------------------------------------------------------------------


async def _task(session: AsyncSession, user_id: UUID, **values: Any) -> TaskModel:
    values.setdefault("name", "task")
    values.setdefault("prompt_template", "Summarize {path}")
    return await TaskRepository(session).create(user_id=user_id, **values)


async def test_get_scheduled_tasks(session: AsyncSession) -> None:
    repo = TaskRepository(session)
    user = await make_user(session)
    enabled = [
        await _task(
            session, user.id, name=f"on{n}", is_scheduled=True, schedule_enabled=True, created_at=at(n)
        )
        for n in (2, 1)
    ]
    paused = await _task(session, user.id, name="off", is_scheduled=True, schedule_enabled=False)
    await _task(session, user.id, name="manual")
    deleted = await _task(session, user.id, is_scheduled=True, schedule_enabled=True)
    await repo.soft_delete(deleted.id)
    assert [t.name for t in await repo.get_scheduled_tasks()] == ["on1", "on2"]
    everything = await repo.get_scheduled_tasks(enabled_only=False)
    assert {t.id for t in everything} == {enabled[0].id, enabled[1].id, paused.id}


async def test_get_by_tags_overlap_user_and_pages(session: AsyncSession) -> None:
    repo = TaskRepository(session)
    ada = await make_user(session)
    bob = await make_user(session)
    await _task(session, ada.id, name="py", tags=["python", "ci"], created_at=at(1))
    await _task(session, ada.id, name="ops", tags=["ops"], created_at=at(2))
    await _task(session, bob.id, name="bob-py", tags=["python"], created_at=at(3))
    await _task(session, ada.id, name="none", tags=[], created_at=at(4))
    gone = await _task(session, ada.id, name="gone", tags=["python"], created_at=at(5))
    await repo.soft_delete(gone.id)
    found = await repo.get_by_tags(["python", "ops"])
    assert_type(found, list[TaskModel])
    assert [t.name for t in found] == ["bob-py", "ops", "py"]
    assert [t.name for t in await repo.get_by_tags(["python"], user_id=ada.id)] == ["py"]
    assert [t.name for t in await repo.get_by_tags(["python", "ops"], skip=1, limit=1)] == ["ops"]
    assert await repo.get_by_tags([]) == []
    assert await repo.get_by_tags(["Python"]) == []  # tags are case-sensitive
    assert await repo.get_by_tags(["'}', '{\"x"]) == []
    with pytest.raises(InvalidDataError):
        await repo.get_by_tags("python")


# -- TaskExecutionRepository ----------------------------------------------------------------


async def test_get_execution_stats(session: AsyncSession) -> None:
    repo = TaskExecutionRepository(session)
    user = await make_user(session)
    task = await _task(session, user.id)
    other = await _task(session, user.id)
    empty = await repo.get_execution_stats(task.id)
    assert_type(empty, ExecutionStats)
    assert empty == {"total": 0, "completed": 0, "failed": 0, "cancelled": 0, "avg_duration_seconds": None}
    runs: list[tuple[TaskExecutionStatusValue, float | None]] = [
        ("completed", 1.5),
        ("completed", 2.5),
        ("failed", 0.5),
        ("cancelled", None),
    ]
    for status, duration in runs:
        await repo.create(task_id=task.id, status=status, duration_seconds=duration)
    await repo.create(task_id=task.id, status="running")
    await repo.create(task_id=other.id, status="completed", duration_seconds=100.0)
    stats = await repo.get_execution_stats(task.id)
    assert stats == {"total": 5, "completed": 2, "failed": 1, "cancelled": 1, "avg_duration_seconds": 1.5}
    await repo.create(task_id=task.id, status="completed", duration_seconds=0.0)
    zero = await repo.get_execution_stats(other.id)
    assert zero["avg_duration_seconds"] == 100.0


# -- ReportRepository ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        'say "hi"',
        "back\\slash",
        "{braces}",
        '"}, "x": "',
        "'; DROP TABLE reports; --",
        "unicode ✓ 雪",
        "",
    ],
)
async def test_search_content_matches_text_literally(session: AsyncSession, text: str) -> None:
    repo = ReportRepository(session)
    user = await make_user(session)
    wanted = await repo.create(user_id=user.id, title="hit", report_type="summary", content={"text": text})
    await repo.create(user_id=user.id, title="longer", report_type="summary", content={"text": text + "!"})
    await repo.create(user_id=user.id, title="other key", report_type="summary", content={"body": text})
    found = await repo.search_content(text)
    assert_type(found, list[ReportModel])
    assert [r.id for r in found] == [wanted.id]
    assert await repo.count() == 3


async def test_search_content_user_limit_order_and_soft_delete(session: AsyncSession) -> None:
    repo = ReportRepository(session)
    ada = await make_user(session)
    bob = await make_user(session)
    made = [
        await repo.create(
            user_id=owner.id,
            title=f"r{n}",
            report_type="summary",
            content={"text": "x", "n": n},
            created_at=at(n),
        )
        for n, owner in enumerate((ada, ada, bob, ada))
    ]
    await repo.soft_delete(made[1].id)
    assert [r.title for r in await repo.search_content("x")] == ["r3", "r2", "r0"]
    assert [r.title for r in await repo.search_content("x", user_id=ada.id)] == ["r3", "r0"]
    assert [r.title for r in await repo.search_content("x", limit=1)] == ["r3"]
    assert await repo.search_content("y") == []
    with pytest.raises(InvalidDataError):
        await repo.search_content("x", limit=0)


# -- MCPServerRepository -------------------------------------------------------------------


async def test_list_by_user_own_and_global(session: AsyncSession) -> None:
    repo = MCPServerRepository(session)
    ada = await make_user(session)
    bob = await make_user(session)
    await repo.create(user_id=ada.id, name="b-own", server_type="stdio", config={"command": "x"})
    await repo.create(user_id=None, name="a-global", server_type="http")
    await repo.create(user_id=bob.id, name="bobs", server_type="sse")
    gone = await repo.create(user_id=ada.id, name="c-gone", server_type="stdio")
    await repo.soft_delete(gone.id)
    assert [s.name for s in await repo.list_by_user(ada.id)] == ["a-global", "b-own"]
    assert [s.name for s in await repo.list_by_user(ada.id, include_global=False)] == ["b-own"]
    assert [s.name for s in await repo.list_by_user(uuid4())] == ["a-global"]


# -- SessionTemplateRepository ---------------------------------------------------------------


async def _template(session: AsyncSession, user_id: UUID, **values: Any) -> SessionTemplateModel:
    values.setdefault("name", "template")
    return await SessionTemplateRepository(session).create(user_id=user_id, **values)


async def test_search_by_tags_visibility_and_order(session: AsyncSession) -> None:
    repo = SessionTemplateRepository(session)
    ada = await make_user(session)
    bob = await make_user(session)
    await _template(session, ada.id, name="ada-private", tags=["py"], usage_count=1)
    await _template(session, bob.id, name="bob-private", tags=["py"], usage_count=50)
    await _template(session, bob.id, name="bob-public", tags=["py", "web"], is_public=True, usage_count=10)
    await _template(session, bob.id, name="bob-org", tags=["web"], is_organization_shared=True, usage_count=5)
    await _template(session, bob.id, name="bob-other-tag", tags=["go"], is_public=True, usage_count=99)
    gone = await _template(session, ada.id, name="gone", tags=["py"], usage_count=1000)
    await repo.soft_delete(gone.id)
    visible = await repo.search_by_tags(["py", "web"], user_id=ada.id)
    assert_type(visible, list[SessionTemplateModel])
    assert [t.name for t in visible] == ["bob-public", "bob-org", "ada-private"]
    everyone = await repo.search_by_tags(["py", "web"])
    assert [t.name for t in everyone] == ["bob-private", "bob-public", "bob-org", "ada-private"]
    assert [t.name for t in await repo.search_by_tags(["py", "web"], skip=1, limit=2)] == [
        "bob-public",
        "bob-org",
    ]
    assert await repo.search_by_tags(["rust"]) == []


async def test_update_usage_stats_increments_and_never_commits(db: Database) -> None:
    async with db.session() as s:
        template = await _template(s, (await make_user(s)).id)
        assert template.last_used_at is None
    async with db.session() as s:
        repo = SessionTemplateRepository(s)
        for _ in range(3):
            assert await repo.update_usage_stats(template.id) is True
        loaded = await repo.get(template.id)
        assert loaded.usage_count == 3
        assert loaded.last_used_at is not None and loaded.last_used_at.tzinfo is not None
        assert await repo.update_usage_stats(uuid4()) is False
        await s.rollback()  # the caller decides: nothing was committed by the repository
    async with db.session() as s:
        assert (await SessionTemplateRepository(s).get(template.id)).usage_count == 0


# -- WorkingDirectoryArchiveRepository and SessionMetricsSnapshotRepository -------------------


async def test_pending_archives_and_claim(session: AsyncSession) -> None:
    repo = WorkingDirectoryArchiveRepository(session)
    parent = await make_session(session)
    pending = [await repo.create(session_id=parent.id, created_at=at(n)) for n in (3, 1, 2)]
    await repo.create(session_id=parent.id, status="completed", created_at=at(0))
    assert [a.created_at for a in await repo.get_pending_archives()] == [at(1), at(2), at(3)]
    assert len(await repo.get_pending_archives(limit=2)) == 2
    claimed = await repo.claim_pending(limit=2)
    assert [a.created_at for a in claimed] == [at(1), at(2)]
    assert all(a.status is ArchiveStatus.IN_PROGRESS for a in claimed)
    assert [a.id for a in await repo.get_pending_archives()] == [pending[0].id]
    assert [a.id for a in await repo.claim_pending(limit=5)] == [pending[0].id]
    assert await repo.claim_pending() == []


async def test_get_snapshots_in_range(session: AsyncSession) -> None:
    repo = SessionMetricsSnapshotRepository(session)
    parent = await make_session(session)
    other = await make_session(session)
    for n in (1, 2, 3, 4, 5):
        await repo.create(session_id=parent.id, total_messages=n, created_at=at(n))
    await repo.create(session_id=other.id, total_messages=99, created_at=at(3))
    found = await repo.get_snapshots_in_range(parent.id, at(2), at(4))
    assert [s.total_messages for s in found] == [2, 3, 4]
    assert await repo.get_snapshots_in_range(parent.id, at(6), at(9)) == []
    with pytest.raises(InvalidDataError) as caught:
        await repo.get_snapshots_in_range(parent.id, datetime(2026, 1, 1), at(4))
    assert caught.value.field == "start_time"
