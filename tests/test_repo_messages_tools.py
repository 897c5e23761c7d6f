"""MessageRepository, ToolCallRepository, HookExecutionRepository, PermissionDecisionRepository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, assert_type
from uuid import UUID, uuid4

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer.errors import ConflictError, ConstraintViolationError, InvalidDataError
from datalayer.models import MessageModel, MessageType, ToolCallModel, ToolCallStatus
from datalayer.repositories import (
    HookExecutionRepository,
    MessageRepository,
    PermissionDecisionRepository,
    ToolCallRepository,
    ToolStatistics,
)
from tests.helpers import at, make_session


def _untyped(**values: Any) -> dict[str, Any]:
    """Return keyword arguments as a plain dict: how a caller bypasses the static checks."""
    return values


# -- MessageRepository -------------------------------------------------------------------


async def test_get_by_session_in_sequence_order(session: AsyncSession) -> None:
    repo = MessageRepository(session)
    parent = await make_session(session)
    other = await make_session(session)
    for number in (3, 1, 2, 5, 4):
        await repo.create(session_id=parent.id, sequence_number=number, message_type="user")
    await repo.create(session_id=other.id, sequence_number=1, message_type="user")
    page = await repo.get_by_session(parent.id)
    assert_type(page, list[MessageModel])
    assert [m.sequence_number for m in page] == [1, 2, 3, 4, 5]
    assert [m.sequence_number for m in await repo.get_by_session(parent.id, skip=1, limit=2)] == [2, 3]
    assert await repo.get_by_session(uuid4()) == []


async def test_sequence_numbers_are_unique_per_session(session: AsyncSession) -> None:
    repo = MessageRepository(session)
    parent = await make_session(session)
    await repo.create(session_id=parent.id, sequence_number=1, message_type="user")
    with pytest.raises(ConflictError):
        await repo.create(session_id=parent.id, sequence_number=1, message_type="assistant")


async def test_get_next_sequence_number(session: AsyncSession) -> None:
    repo = MessageRepository(session)
    parent = await make_session(session)
    assert await repo.get_next_sequence_number(parent.id) == 1
    await repo.create(session_id=parent.id, sequence_number=1, message_type="user")
    await repo.create(session_id=parent.id, sequence_number=2, message_type="user")
    assert await repo.get_next_sequence_number(parent.id) == 3
    assert await repo.get_next_sequence_number(uuid4()) == 1


async def test_append_numbers_messages_and_validates_first(session: AsyncSession) -> None:
    repo = MessageRepository(session)
    parent = await make_session(session)
    first = await repo.append(parent.id, message_type="user", content={"text": "hi"})
    second = await repo.append(parent.id, message_type=MessageType.ASSISTANT)
    assert (first.sequence_number, second.sequence_number) == (1, 2)
    assert first.content == {"text": "hi"}
    with pytest.raises(InvalidDataError) as caught:
        await repo.append(parent.id, **_untyped(message_type="shout"))
    assert caught.value.field == "message_type"
    with pytest.raises(InvalidDataError) as caught:
        await repo.append(parent.id, **_untyped(message_type="user", sequence_number=9))
    assert caught.value.field == "sequence_number"
    assert [m.sequence_number for m in await repo.get_by_session(parent.id)] == [1, 2]


async def test_append_to_missing_session_is_a_constraint_violation(session: AsyncSession) -> None:
    with pytest.raises(ConstraintViolationError):
        await MessageRepository(session).append(uuid4(), message_type="user")


async def test_get_result_message_returns_latest_result(session: AsyncSession) -> None:
    repo = MessageRepository(session)
    parent = await make_session(session)
    assert await repo.get_result_message(parent.id) is None
    await repo.create(session_id=parent.id, sequence_number=1, message_type="result", created_at=at(1))
    latest = await repo.create(
        session_id=parent.id, sequence_number=2, message_type="result", created_at=at(5)
    )
    await repo.create(session_id=parent.id, sequence_number=3, message_type="assistant", created_at=at(9))
    found = await repo.get_result_message(parent.id)
    assert_type(found, MessageModel | None)
    assert found is latest


# -- ToolCallRepository ------------------------------------------------------------------


async def _call(session: AsyncSession, session_id: UUID, **values: Any) -> ToolCallModel:
    values.setdefault("tool_use_id", f"toolu_{uuid4().hex}")
    values.setdefault("tool_name", "Bash")
    return await ToolCallRepository(session).create(session_id=session_id, **values)


async def test_get_by_tool_use_id(session: AsyncSession) -> None:
    repo = ToolCallRepository(session)
    parent = await make_session(session)
    call = await _call(session, parent.id, tool_use_id="toolu_1")
    found = await repo.get_by_tool_use_id("toolu_1")
    assert_type(found, ToolCallModel | None)
    assert found is call
    assert await repo.get_by_tool_use_id("toolu_2") is None
    assert await repo.get_by_tool_use_id("' OR ''='") is None


async def test_get_pending_for_permission(session: AsyncSession) -> None:
    repo = ToolCallRepository(session)
    one = await make_session(session)
    two = await make_session(session)
    waiting = [
        await _call(session, one.id, created_at=at(3)),
        await _call(session, two.id, created_at=at(1)),
        await _call(session, one.id, created_at=at(2)),
    ]
    await _call(session, one.id, permission_decision="allow")
    await _call(session, one.id, status="running")
    assert [c.id for c in await repo.get_pending_for_permission()] == [
        waiting[1].id,
        waiting[2].id,
        waiting[0].id,
    ]
    assert [c.id for c in await repo.get_pending_for_permission(one.id)] == [waiting[2].id, waiting[0].id]
    assert await repo.get_pending_for_permission(uuid4()) == []


async def test_update_status_stamps_times_like_the_reference(session: AsyncSession) -> None:
    repo = ToolCallRepository(session)
    parent = await make_session(session)
    call = await _call(session, parent.id)
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert await repo.update_status(call.id, "running") is True
    assert call.status is ToolCallStatus.RUNNING
    assert call.started_at is not None and call.started_at >= before and call.started_at.tzinfo is not None
    assert call.completed_at is None
    assert await repo.update_status(call.id, ToolCallStatus.SUCCESS) is True
    done = await repo.get(call.id)
    assert done.completed_at is not None and done.completed_at >= done.started_at  # type: ignore[operator]  # started_at was set above
    assert done.is_error is False and done.error_message is None

    failing = await _call(session, parent.id)
    assert await repo.update_status(failing.id, "error", error_message="exit 1") is True
    failed = await repo.get(failing.id)
    assert (failed.status, failed.is_error, failed.error_message) == (ToolCallStatus.ERROR, True, "exit 1")
    assert failed.completed_at is not None and failed.started_at is None

    denied = await _call(session, parent.id)
    assert await repo.update_status(denied.id, "denied") is True
    assert (await repo.get(denied.id)).completed_at is None
    assert await repo.update_status(uuid4(), "running") is False
    with pytest.raises(InvalidDataError) as caught:
        await repo.update_status(call.id, "exploded")
    assert caught.value.field == "status"


async def test_get_statistics_by_tool(session: AsyncSession) -> None:
    repo = ToolCallRepository(session)
    one = await make_session(session)
    two = await make_session(session)
    for status, duration in (("success", 100), ("success", 300), ("error", None), ("pending", 200)):
        await _call(session, one.id, tool_name="Bash", status=status, duration_ms=duration)
    await _call(session, one.id, tool_name="Read", status="success", duration_ms=0)
    await _call(session, two.id, tool_name="Edit", status="error")
    stats = await repo.get_statistics_by_tool()
    assert_type(stats, list[ToolStatistics])
    assert stats == [
        {
            "tool_name": "Bash",
            "total_calls": 4,
            "success_count": 2,
            "error_count": 1,
            "avg_duration_ms": 200.0,
        },
        {
            "tool_name": "Edit",
            "total_calls": 1,
            "success_count": 0,
            "error_count": 1,
            "avg_duration_ms": None,
        },
        # 0 ms on average is 0.0, not None (the reference's truthiness test lost it).
        {"tool_name": "Read", "total_calls": 1, "success_count": 1, "error_count": 0, "avg_duration_ms": 0.0},
    ]
    assert [s["tool_name"] for s in await repo.get_statistics_by_tool(two.id)] == ["Edit"]
    assert await repo.get_statistics_by_tool(uuid4()) == []


# -- HookExecutionRepository and PermissionDecisionRepository ------------------------------


async def test_hook_executions_by_tool_use_id(session: AsyncSession) -> None:
    repo = HookExecutionRepository(session)
    parent = await make_session(session)
    later = await repo.create(session_id=parent.id, tool_use_id="tu", hook_type="post", created_at=at(2))
    earlier = await repo.create(session_id=parent.id, tool_use_id="tu", hook_type="pre", created_at=at(1))
    await repo.create(session_id=parent.id, tool_use_id="other", hook_type="pre")
    await repo.create(session_id=parent.id, hook_type="session_start")
    assert [h.id for h in await repo.get_by_tool_use_id("tu")] == [earlier.id, later.id]
    assert await repo.get_by_tool_use_id("none") == []


async def test_count_by_decision(session: AsyncSession) -> None:
    repo = PermissionDecisionRepository(session)
    one = await make_session(session)
    two = await make_session(session)
    for decision in ("allow", "allow", "deny"):
        await repo.create(session_id=one.id, tool_name="Bash", decision=decision)
    await repo.create(session_id=two.id, tool_name="Bash", decision="deny")
    assert await repo.count_by_decision(one.id, "allow") == 2
    assert await repo.count_by_decision(one.id, "deny") == 1
    assert await repo.count_by_decision(uuid4(), "deny") == 0
    with pytest.raises(InvalidDataError) as caught:
        await repo.count_by_decision(one.id, "maybe")
    assert caught.value.field == "decision"
