"""Repository[ModelT]: CRUD, validation, soft delete, pagination, errors — on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import assert_type
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import selectinload
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database
from datalayer.errors import (
    ConflictError,
    ConstraintViolationError,
    DataLayerError,
    InvalidDataError,
    NotFoundError,
    StaleDataError,
)
from datalayer.models import (
    MessageModel,
    MessageType,
    ReportModel,
    SessionModel,
    SessionStatus,
    TaskModel,
    ToolCallModel,
    UserModel,
)
from datalayer.repositories import MAX_LIMIT, Repository, SoftDeleteRepository
from tests.helpers import at, make_session, make_user, row_count

# -- create / add ---------------------------------------------------------------------------


async def test_create_returns_persistent_entity_with_defaults(session: AsyncSession) -> None:
    user = await make_user(session)
    created = await Repository(SessionModel, session).create(user_id=user.id, name="s1")
    assert_type(created, SessionModel)
    assert isinstance(created.id, UUID) and created.id.version == 7
    assert created.status is SessionStatus.CREATED
    assert created.total_cost_usd == Decimal(0)
    assert created.sdk_options == {}
    assert created.created_at.tzinfo is not None and created.created_at.utcoffset() == timedelta(0)
    assert created in session
    fetched = await Repository(SessionModel, session).get_by_id(created.id)
    assert fetched is created


async def test_created_row_is_committed_and_readable_in_next_unit(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s, email="Round@Trip.io", full_name="Ada")
    async with db.session() as s:
        again = await Repository(UserModel, s).get(user.id)
        assert (again.email, again.full_name, again.is_active) == ("Round@Trip.io", "Ada", True)
        assert again.created_at == user.created_at
        assert again.created_at.tzinfo is not None


async def test_plain_string_enum_value_is_accepted(session: AsyncSession) -> None:
    created = await make_session(session, status="active", mode="background")
    assert created.status is SessionStatus.ACTIVE
    assert str(created.status) == "active"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"status": "flying"}, "status"),
        ({"bogus": 1}, "bogus"),
        ({"name": 12}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"total_cost_usd": "abc"}, "total_cost_usd"),
        ({"api_input_tokens": -1}, "api_input_tokens"),
        ({"api_input_tokens": 2**63}, "api_input_tokens"),
        ({"completed_at": datetime(2026, 1, 1)}, "completed_at"),
        ({"sdk_options": [1, 2]}, "sdk_options"),
    ],
)
async def test_create_rejects_bad_input_before_the_database(
    session: AsyncSession, values: dict[str, object], field: str
) -> None:
    user = await make_user(session)
    with pytest.raises(InvalidDataError) as caught:
        await Repository(SessionModel, session).create(user_id=user.id, **values)
    assert caught.value.field == field
    assert field in str(caught.value)
    assert await row_count(session, SessionModel) == 0


async def test_create_missing_required_field(session: AsyncSession) -> None:
    with pytest.raises(InvalidDataError) as caught:
        await Repository(UserModel, session).create(username="nobody")
    assert caught.value.field == "email"
    assert await row_count(session, UserModel) == 0


async def test_add_validates_and_persists_caller_built_entity(session: AsyncSession) -> None:
    user = await make_user(session)
    entity = SessionModel(user_id=user.id, status="paused")  # type: ignore[arg-type]  # a str on purpose
    stored = await Repository(SessionModel, session).add(entity)
    assert stored is entity
    assert stored.status is SessionStatus.PAUSED
    assert await row_count(session, SessionModel) == 1


async def test_add_rejects_invalid_entity_and_leaves_session_clean(session: AsyncSession) -> None:
    user = await make_user(session)
    entity = SessionModel(user_id=user.id, status="bogus")  # type: ignore[arg-type]  # invalid on purpose
    with pytest.raises(InvalidDataError) as caught:
        await Repository(SessionModel, session).add(entity)
    assert caught.value.field == "status"
    assert entity not in session
    assert await row_count(session, SessionModel) == 0


# -- create_many ----------------------------------------------------------------------------


async def test_create_many_keeps_input_order_and_accepts_entities(session: AsyncSession) -> None:
    parent = await make_session(session)
    rows: list[dict[str, object] | MessageModel] = [
        {"session_id": parent.id, "sequence_number": n, "message_type": "user"} for n in range(1, 301)
    ]
    rows.append(MessageModel(session_id=parent.id, sequence_number=301, message_type=MessageType.RESULT))
    created = await Repository(MessageModel, session).create_many(rows)
    assert_type(created, list[MessageModel])
    assert [m.sequence_number for m in created] == list(range(1, 302))
    assert created[-1].message_type is MessageType.RESULT
    assert await row_count(session, MessageModel) == 301


async def test_create_many_empty(session: AsyncSession) -> None:
    assert await Repository(UserModel, session).create_many([]) == []


async def test_create_many_invalid_row_writes_nothing(session: AsyncSession) -> None:
    parent = await make_session(session)
    rows = [{"session_id": parent.id, "sequence_number": n, "message_type": "user"} for n in range(1, 50)]
    rows.append({"session_id": parent.id, "sequence_number": 50, "message_type": "shout"})
    with pytest.raises(InvalidDataError) as caught:
        await Repository(MessageModel, session).create_many(rows)
    assert caught.value.field == "message_type"
    assert await row_count(session, MessageModel) == 0


async def test_create_many_database_failure_is_all_or_nothing(db: Database) -> None:
    async with db.session() as s:
        parent = await make_session(s)
    # 2,000 rows span several INSERT batches; the duplicate is in the last one.
    rows = [{"session_id": parent.id, "tool_use_id": f"tu-{n}", "tool_name": "Bash"} for n in range(2000)]
    rows.append({"session_id": parent.id, "tool_use_id": "tu-5", "tool_name": "Bash"})
    async with db.session() as s:
        with pytest.raises(ConflictError) as caught:
            await Repository(ToolCallModel, s).create_many(rows)
        assert caught.value.__cause__ is not None
        # The caller goes on and commits: the earlier batches must not be there.
        assert await row_count(s, ToolCallModel) == 0
    async with db.session() as s:
        assert await row_count(s, ToolCallModel) == 0


# -- reads ----------------------------------------------------------------------------------


async def test_get_by_id_and_get(session: AsyncSession) -> None:
    repo = Repository(UserModel, session)
    user = await make_user(session)
    assert_type(await repo.get_by_id(user.id), UserModel | None)
    assert await repo.get_by_id(user.id) is user
    assert await repo.get_by_id(str(user.id)) is user
    assert await repo.get_by_id(uuid4()) is None
    missing = uuid4()
    with pytest.raises(NotFoundError) as caught:
        await repo.get(missing)
    assert str(missing) in str(caught.value)


@pytest.mark.parametrize("bad_id", ["not-a-uuid", 42, None, b"\x00" * 16])
async def test_wrong_id_type_is_invalid_data(session: AsyncSession, bad_id: object) -> None:
    repo = Repository(UserModel, session)
    for call in (repo.get_by_id, repo.exists, repo.delete):
        with pytest.raises(InvalidDataError) as caught:
            await call(bad_id)  # type: ignore[arg-type]  # wrong type on purpose
        assert caught.value.field == "id"


async def test_get_all_default_order_is_newest_first_then_id(session: AsyncSession) -> None:
    repo = Repository(UserModel, session)
    same_time = at(5)
    made = [
        await make_user(session, created_at=at(1)),
        await make_user(session, created_at=same_time),
        await make_user(session, created_at=same_time),
        await make_user(session, created_at=at(3)),
    ]
    tied = sorted(made[1:3], key=lambda u: u.id, reverse=True)
    expected = [tied[0].id, tied[1].id, made[3].id, made[0].id]
    assert [u.id for u in await repo.get_all()] == expected


async def test_get_all_filters_order_and_pagination(session: AsyncSession) -> None:
    repo = Repository(UserModel, session)
    for n in range(10):
        await make_user(session, username=f"u{n:02d}", is_active=n % 2 == 0, created_at=at(n))
    active = await repo.get_all(filters=[col(UserModel.is_active).is_(True)])
    assert [u.username for u in active] == ["u08", "u06", "u04", "u02", "u00"]
    by_name = await repo.get_all(order_by=[col(UserModel.username)], skip=3, limit=4)
    assert [u.username for u in by_name] == ["u03", "u04", "u05", "u06"]
    two_filters = await repo.get_all(
        filters=[col(UserModel.is_active).is_(False), col(UserModel.username) > "u04"]
    )
    assert [u.username for u in two_filters] == ["u09", "u07", "u05"]
    assert await repo.get_all(skip=10) == []
    assert await repo.count() == 10
    assert await repo.count(filters=[col(UserModel.is_active) == True]) == 5  # noqa: E712


@pytest.mark.parametrize(
    ("skip", "limit", "field"),
    [(-1, 10, "skip"), (0, 0, "limit"), (0, -5, "limit"), (0, MAX_LIMIT + 1, "limit"), (0, 10**12, "limit")],
)
async def test_pagination_bounds(session: AsyncSession, skip: int, limit: int, field: str) -> None:
    with pytest.raises(InvalidDataError) as caught:
        await Repository(UserModel, session).get_all(skip=skip, limit=limit)
    assert caught.value.field == field


async def test_limit_at_maximum_is_allowed(session: AsyncSession) -> None:
    await make_user(session)
    assert len(await Repository(UserModel, session).get_all(limit=MAX_LIMIT)) == 1


async def test_exists(session: AsyncSession) -> None:
    repo = Repository(UserModel, session)
    user = await make_user(session)
    assert await repo.exists(user.id) is True
    assert await repo.exists(uuid4()) is False


async def test_eager_loading_and_lazy_raise(db: Database) -> None:
    async with db.session() as s:
        parent = await make_session(s)
        await Repository(MessageModel, s).create_many(
            [{"session_id": parent.id, "sequence_number": n, "message_type": "user"} for n in (2, 1, 3)]
        )
    async with db.session() as s:
        statement = select(SessionModel).options(selectinload(SessionModel.messages))
        loaded = (await s.exec(statement)).one()
        assert [m.sequence_number for m in loaded.messages] == [1, 2, 3]
        plain = await Repository(SessionModel, s).get_all(options=[selectinload(SessionModel.user)])
        assert plain[0].user.id == parent.user_id
    async with db.session() as s:
        already_loaded = await Repository(SessionModel, s).get(parent.id)
        again = await Repository(SessionModel, s).get(
            parent.id,
            options=[selectinload(SessionModel.messages)],
        )
        assert again is already_loaded
        assert [m.sequence_number for m in again.messages] == [1, 2, 3]
    async with db.session() as s:
        bare = await Repository(SessionModel, s).get(parent.id)
        with pytest.raises(sa.exc.InvalidRequestError, match="lazy='raise'"):
            _ = bare.messages


# -- update ---------------------------------------------------------------------------------


async def test_update_changes_row_bumps_updated_at_and_refreshes_loaded_instance(
    session: AsyncSession,
) -> None:
    repo = Repository(SessionModel, session)
    loaded = await make_session(session, updated_at=at(0))
    before = loaded.updated_at
    updated = await repo.update(loaded.id, status="completed", completed_at=at(10), total_cost_usd=1.25)
    assert_type(updated, SessionModel | None)
    assert updated is loaded
    assert loaded.status is SessionStatus.COMPLETED
    assert loaded.completed_at == at(10)
    assert loaded.total_cost_usd == Decimal("1.25")
    assert loaded.updated_at > before
    assert loaded.version == 2
    again = (await session.exec(select(SessionModel.status).where(SessionModel.id == loaded.id))).one()
    assert again is SessionStatus.COMPLETED


async def test_update_missing_or_soft_deleted_returns_none(session: AsyncSession) -> None:
    repo = SoftDeleteRepository(UserModel, session)
    user = await make_user(session, full_name="before")
    assert await repo.update(uuid4(), full_name="x") is None
    assert await repo.soft_delete(user.id)
    assert await repo.update(user.id, full_name="x") is None
    stored = await repo.get(user.id, include_deleted=True)
    assert stored.full_name == "before"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"id": uuid4()}, "id"),
        ({"created_at": at(1)}, "created_at"),
        ({"status": "nope"}, "status"),
        ({"nope": 1}, "nope"),
        ({"total_messages": "many"}, "total_messages"),
        ({"completed_at": datetime(2026, 1, 1)}, "completed_at"),
    ],
)
async def test_update_rejects_bad_input(session: AsyncSession, values: dict[str, object], field: str) -> None:
    created = await make_session(session)
    with pytest.raises(InvalidDataError) as caught:
        await Repository(SessionModel, session).update(created.id, **values)
    assert caught.value.field == field
    assert created.status is SessionStatus.CREATED
    assert created.version == 1


async def test_update_unique_violation_is_conflict(db: Database) -> None:
    async with db.session() as s:
        await make_user(s, email="taken@example.com")
        other = await make_user(s)
    async with db.session() as s:
        with pytest.raises(ConflictError):
            await Repository(UserModel, s).update(other.id, email="TAKEN@example.com")
    async with db.session() as s:
        assert (await Repository(UserModel, s).get(other.id)).email == other.email


# -- delete, soft delete, restore -----------------------------------------------------------


async def test_delete_cascades_to_owned_rows_and_nulls_optional_references(db: Database) -> None:
    async with db.session() as s:
        parent = await make_session(s)
        message = await Repository(MessageModel, s).create(
            session_id=parent.id, sequence_number=1, message_type="assistant"
        )
        other = await make_session(s)
        call = await Repository(ToolCallModel, s).create(
            session_id=other.id, message_id=message.id, tool_use_id="t1", tool_name="Read"
        )
        report = await Repository(ReportModel, s).create(
            user_id=parent.user_id, session_id=parent.id, title="r", report_type="summary"
        )
    async with db.session() as s:
        assert await Repository(SessionModel, s).delete(parent.id) is True
        assert await Repository(SessionModel, s).delete(parent.id) is False
    async with db.session() as s:
        assert await row_count(s, MessageModel) == 0
        assert (await Repository(ToolCallModel, s).get(call.id)).message_id is None
        assert (await Repository(ReportModel, s).get(report.id)).session_id is None


async def test_delete_of_loaded_instance_removes_it_from_session(session: AsyncSession) -> None:
    user = await make_user(session)
    assert await Repository(UserModel, session).delete(user.id)
    assert await Repository(UserModel, session).get_by_id(user.id) is None


async def test_soft_delete_hides_everywhere_and_restore_brings_back(session: AsyncSession) -> None:
    repo = SoftDeleteRepository(UserModel, session)
    keep = await make_user(session)
    gone = await make_user(session)
    assert await repo.soft_delete(gone.id) is True
    assert gone.is_deleted and gone.deleted_at is not None
    assert await repo.soft_delete(gone.id) is False
    assert await repo.soft_delete(uuid4()) is False
    assert await repo.get_by_id(gone.id) is None
    assert (await repo.get_by_id(gone.id, include_deleted=True)) is gone
    assert [u.id for u in await repo.get_all()] == [keep.id]
    assert len(await repo.get_all(include_deleted=True)) == 2
    assert await repo.count() == 1
    assert await repo.count(include_deleted=True) == 2
    assert await repo.exists(gone.id) is False
    assert await repo.exists(gone.id, include_deleted=True) is True
    with pytest.raises(NotFoundError):
        await repo.get(gone.id)
    assert await repo.restore(gone.id) is True
    assert await repo.restore(gone.id) is False
    assert (await repo.get(gone.id)).deleted_at is None
    assert await repo.count() == 2


async def test_generic_repository_hides_soft_deleted_rows_too(session: AsyncSession) -> None:
    user = await make_user(session)
    await SoftDeleteRepository(UserModel, session).soft_delete(user.id)
    assert await Repository(UserModel, session).get_by_id(user.id) is None


# -- constraints and errors ------------------------------------------------------------------


async def test_email_unique_case_insensitive_among_live_users(db: Database) -> None:
    async with db.session() as s:
        first = await make_user(s, email="Ada@Example.com", username="ada")
    async with db.session() as s:
        with pytest.raises(ConflictError) as caught:
            await make_user(s, email="ada@example.COM")
        assert isinstance(caught.value.__cause__, sa.exc.IntegrityError)
    async with db.session() as s:
        with pytest.raises(ConflictError):
            await make_user(s, username="ada")
    async with db.session() as s:
        assert await row_count(s, UserModel) == 1
        await SoftDeleteRepository(UserModel, s).soft_delete(first.id)
    async with db.session() as s:
        second = await make_user(s, email="ADA@example.com", username="ada")
    async with db.session() as s:
        with pytest.raises(ConflictError):
            await SoftDeleteRepository(UserModel, s).restore(first.id)
    async with db.session() as s:
        assert (await Repository(UserModel, s).get(second.id)).email == "ADA@example.com"


async def test_foreign_key_violation(db: Database) -> None:
    async with db.session() as s:
        with pytest.raises(ConstraintViolationError) as caught:
            await Repository(SessionModel, s).create(user_id=uuid4())
        assert caught.value.__cause__ is not None
    async with db.session() as s:
        assert await row_count(s, SessionModel) == 0


async def test_check_constraint_violation_is_translated(db: Database) -> None:
    from datalayer.errors import translate_errors

    async with db.session() as s:
        created = await make_session(s)
    async with db.session() as s:
        # Bypass validation and the Enum type: the database's CHECK must still refuse it.
        raw = (
            sa.update(SessionModel)
            .where(col(SessionModel.id) == created.id)
            .values(status=sa.bindparam("raw_status", "bogus", type_=sa.String()))
        )
        with pytest.raises(ConstraintViolationError), translate_errors():
            await s.exec(raw)


async def test_after_an_error_the_unit_rolls_back_and_the_next_one_works(db: Database) -> None:
    with pytest.raises(ConflictError):
        async with db.session() as s:
            await make_user(s, email="dup@example.com", username="one")
            await make_user(s, email="dup@example.com", username="two")
    async with db.session() as s:
        assert await row_count(s, UserModel) == 0
        await make_user(s, email="dup@example.com", username="three")
    async with db.session() as s:
        assert await row_count(s, UserModel) == 1


async def test_every_repository_error_is_a_datalayer_error(session: AsyncSession) -> None:
    with pytest.raises(DataLayerError):
        await Repository(SessionModel, session).create(user_id=uuid4())


# -- value fidelity --------------------------------------------------------------------------


async def test_datetimes_come_back_aware_utc(db: Database) -> None:
    plus_two = timezone(timedelta(hours=2))
    async with db.session() as s:
        created = await make_session(s, completed_at=datetime(2026, 3, 1, 12, 0, tzinfo=plus_two))
    async with db.session() as s:
        again = await Repository(SessionModel, s).get(created.id)
        assert again.completed_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
        assert again.completed_at is not None and again.completed_at.utcoffset() == timedelta(0)
        assert again.created_at.tzinfo is not None


async def test_money_is_exact(db: Database) -> None:
    async with db.session() as s:
        created = await make_session(s, total_cost_usd=0.1)
        repo = Repository(SessionModel, s)
        for _ in range(9):
            current = await repo.get(created.id)
            await repo.update(created.id, total_cost_usd=current.total_cost_usd + Decimal("0.1"))
    async with db.session() as s:
        stored = await Repository(SessionModel, s).get(created.id)
        assert stored.total_cost_usd == Decimal("1.0")
        total = (await s.exec(select(sa.func.sum(SessionModel.total_cost_usd)))).one()
        assert Decimal(total) == Decimal("1.0")


async def test_in_place_mutation_of_json_and_tags_persists(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s)
        task = await Repository(TaskModel, s).create(
            user_id=user.id, name="t", prompt_template="p", tags=["a"], sdk_options={"model": "x"}
        )
    async with db.session() as s:
        loaded = await Repository(TaskModel, s).get(task.id)
        loaded.tags.append("b")
        loaded.sdk_options["temperature"] = 0
    async with db.session() as s:
        again = await Repository(TaskModel, s).get(task.id)
        assert again.tags == ["a", "b"]
        assert again.sdk_options == {"model": "x", "temperature": 0}


async def test_big_token_counters(session: AsyncSession) -> None:
    big = 2**63 - 1
    created = await make_session(session, api_input_tokens=big)
    await session.commit()
    session.expunge_all()
    again = await Repository(SessionModel, session).get(created.id)
    assert again.api_input_tokens == big


async def test_optimistic_update_refuses_a_stale_version(db: Database) -> None:
    async with db.session() as s:
        created = await make_session(s)
    # Two workers read the same version in their own units of work...
    async with db.session(read_only=True) as s:
        seen_by_a = (await Repository(SessionModel, s).get(created.id)).version
    async with db.session(read_only=True) as s:
        seen_by_b = (await Repository(SessionModel, s).get(created.id)).version
    assert seen_by_a == seen_by_b == 1
    # ...A writes first; B's write, based on what it read, must not overwrite A's.
    async with db.session() as s:
        await Repository(SessionModel, s).update_if_version(created.id, seen_by_a, status="active")
    with pytest.raises(StaleDataError) as caught:
        async with db.session() as s:
            await Repository(SessionModel, s).update_if_version(created.id, seen_by_b, status="paused")
    assert isinstance(caught.value, ConflictError)
    async with db.session() as s:
        final = await Repository(SessionModel, s).get(created.id)
        assert (final.status, final.version) == (SessionStatus.ACTIVE, 2)


async def test_expected_version_on_unversioned_table_is_invalid(session: AsyncSession) -> None:
    user = await make_user(session)
    with pytest.raises(InvalidDataError) as caught:
        await Repository(UserModel, session).update_if_version(user.id, 1, full_name="x")
    assert caught.value.field == "expected_version"
