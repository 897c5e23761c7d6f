"""Repository.upsert / upsert_many: INSERT ... ON CONFLICT DO UPDATE ... RETURNING on both backends."""

from __future__ import annotations

from typing import assert_type
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database
from datalayer.errors import InvalidDataError
from datalayer.models import (
    MessageModel,
    SessionModel,
    ToolCallModel,
    ToolCallStatus,
    UserModel,
)
from datalayer.repositories import Repository, SoftDeleteRepository
from tests.helpers import at, make_session, make_user, row_count


async def test_upsert_inserts_then_updates_by_unique_column(session: AsyncSession) -> None:
    parent = await make_session(session)
    repo = Repository(ToolCallModel, session)
    created = await repo.upsert(on=("tool_use_id",), session_id=parent.id, tool_use_id="t1", tool_name="Bash")
    assert_type(created, ToolCallModel)
    assert created.status is ToolCallStatus.PENDING and created.tool_name == "Bash"
    again = await repo.upsert(
        on=("tool_use_id",), session_id=parent.id, tool_use_id="t1", tool_name="Read", status="success"
    )
    assert again is created  # the loaded instance, refreshed
    assert again.id == created.id
    assert (again.tool_name, again.status) == ("Read", ToolCallStatus.SUCCESS)
    assert again.updated_at >= again.created_at
    assert await row_count(session, ToolCallModel) == 1


async def test_upsert_keeps_columns_not_given_and_id_created_at(db: Database) -> None:
    async with db.session() as s:
        parent = await make_session(s)
        first = await Repository(ToolCallModel, s).upsert(
            on=("tool_use_id",),
            session_id=parent.id,
            tool_use_id="t1",
            tool_name="Bash",
            tool_input={"cmd": "ls"},
            created_at=at(0),
        )
    async with db.session() as s:
        second = await Repository(ToolCallModel, s).upsert(
            on=("tool_use_id",),
            session_id=parent.id,
            tool_use_id="t1",
            tool_name="Bash",
            duration_ms=5,
            created_at=at(9),
        )
        assert second.id == first.id
        assert second.created_at == at(0)
        assert second.tool_input == {"cmd": "ls"}
        assert (second.tool_name, second.duration_ms) == ("Bash", 5)


async def test_upsert_many_composite_key_returns_input_order(db: Database) -> None:
    async with db.session() as s:
        parent = await make_session(s)
        repo = Repository(MessageModel, s)
        rows = [
            {"session_id": parent.id, "sequence_number": n, "message_type": "user", "content": {"n": n}}
            for n in (3, 1, 2)
        ]
        first = await repo.upsert_many(rows, on=("session_id", "sequence_number"))
        assert [m.sequence_number for m in first] == [3, 1, 2]
    async with db.session() as s:
        repo = Repository(MessageModel, s)
        rows = [
            {"session_id": parent.id, "sequence_number": n, "message_type": "assistant", "content": {"v": 2}}
            for n in (4, 2)
        ]
        second = await repo.upsert_many(rows, on=("session_id", "sequence_number"))
        assert [m.sequence_number for m in second] == [4, 2]
        assert second[1].id == first[2].id
        assert await row_count(s, MessageModel) == 4
        stored = {m.sequence_number: (m.message_type, m.content) for m in await repo.get_all()}
        assert stored[1] == ("user", {"n": 1})
        assert stored[2] == ("assistant", {"v": 2})


async def test_upsert_many_rows_with_different_columns(session: AsyncSession) -> None:
    parent = await make_session(session)
    repo = Repository(ToolCallModel, session)
    await repo.upsert(
        on=("tool_use_id",), session_id=parent.id, tool_use_id="a", tool_name="X", duration_ms=1
    )
    result = await repo.upsert_many(
        [
            {"session_id": parent.id, "tool_use_id": "a", "tool_name": "Y"},
            {"session_id": parent.id, "tool_use_id": "b", "tool_name": "Z", "duration_ms": 7},
        ],
        on=("tool_use_id",),
    )
    assert [(t.tool_use_id, t.tool_name, t.duration_ms) for t in result] == [("a", "Y", 1), ("b", "Z", 7)]
    assert await repo.upsert_many([], on=("tool_use_id",)) == []


async def test_upsert_bumps_version_on_versioned_table(session: AsyncSession) -> None:
    user = await make_user(session)
    repo = Repository(SessionModel, session)
    made = await repo.upsert(on=("id",), id=UUID(int=7 << 76), user_id=user.id, name="a")
    assert made.version == 1
    again = await repo.upsert(on=("id",), id=made.id, user_id=user.id, name="b")
    assert (again.name, again.version) == ("b", 2)


async def test_upsert_on_partial_unique_index(session: AsyncSession) -> None:
    repo = SoftDeleteRepository(UserModel, session)
    first = await repo.upsert(on=("username",), username="ada", email="ada@example.com")
    again = await repo.upsert(on=("username",), username="ada", email="ada@new.example.com", full_name="A")
    assert again.id == first.id and again.email == "ada@new.example.com"
    assert await repo.soft_delete(first.id)
    fresh = await repo.upsert(on=("username",), username="ada", email="ada2@example.com")
    assert fresh.id != first.id
    assert await row_count(session, UserModel) == 2


@pytest.mark.parametrize(
    ("on", "values"),
    [
        (("tool_name",), {"tool_name": "x", "tool_use_id": "u"}),  # not unique
        ((), {"tool_name": "x", "tool_use_id": "u"}),
        ("tool_use_id", {"tool_name": "x", "tool_use_id": "u"}),  # a str, not a tuple
        (("tool_use_id",), {"tool_name": "x"}),  # key value missing
        (("tool_use_id",), {"tool_name": "x", "tool_use_id": "u", "status": "flying"}),
        (("tool_use_id",), {"tool_name": "x", "tool_use_id": "u", "bogus": 1}),
    ],
)
async def test_upsert_rejects_bad_input_before_the_database(
    session: AsyncSession, on: tuple[str, ...], values: dict[str, object]
) -> None:
    parent = await make_session(session)
    with pytest.raises(InvalidDataError):
        await Repository(ToolCallModel, session).upsert(on=on, session_id=parent.id, **values)
    assert await row_count(session, ToolCallModel) == 0


async def test_upsert_many_duplicate_keys_and_failure_write_nothing(session: AsyncSession) -> None:
    parent = await make_session(session)
    repo = Repository(ToolCallModel, session)
    dup = [{"session_id": parent.id, "tool_use_id": "a", "tool_name": "X"}] * 2
    with pytest.raises(InvalidDataError):
        await repo.upsert_many(dup, on=("tool_use_id",))
    with pytest.raises(InvalidDataError):
        await repo.upsert(on=("tool_use_id",), session_id=parent.id, tool_use_id="a", tool_name="x" * 300)
    assert await row_count(session, ToolCallModel) == 0


async def test_expression_index_is_not_a_conflict_target(session: AsyncSession) -> None:
    with pytest.raises(InvalidDataError) as caught:
        await Repository(UserModel, session).upsert(on=("email",), username="x", email="x@example.com")
    assert caught.value.field == "on"


async def test_upsert_many_sends_one_statement_per_batch(db: Database) -> None:
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    async with db.session() as s:
        parent = await make_session(s)
        rows = [{"session_id": parent.id, "tool_use_id": f"t{n}", "tool_name": "X"} for n in range(300)]
        sa.event.listen(db.engine.sync_engine, "before_cursor_execute", record)
        try:
            result = await Repository(ToolCallModel, s).upsert_many(rows, on=("tool_use_id",))
        finally:
            sa.event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    inserts = [text for text in statements if text.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1 and "ON CONFLICT" in inserts[0].upper()
    assert [t.tool_use_id for t in result] == [f"t{n}" for n in range(300)]
