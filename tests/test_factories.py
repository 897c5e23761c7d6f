"""The factories: valid entities, persistence with parents, sequence numbers, determinism."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from polyfactory.exceptions import ConfigurationException
from polyfactory.pytest_plugin import register_fixture
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database
from datalayer.errors import InvalidDataError
from datalayer.factories import (
    ALL_FACTORIES,
    TAGS,
    DataFactory,
    MessageFactory,
    SessionFactory,
    TaskExecutionFactory,
    TaskFactory,
    ToolCallFactory,
    UserFactory,
    persist,
    persist_one,
    seed_factories,
    using_session,
)
from datalayer.models import (
    EntityModel,
    MessageModel,
    MessageType,
    SessionModel,
    SessionStatus,
    SoftDeleteModel,
    UserModel,
)
from datalayer.repositories import Repository
from datalayer.validation import validator_for
from tests.helpers import row_count

ROOT = Path(__file__).resolve().parent.parent


def _check_plausible(values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0), name
        if isinstance(value, Decimal):
            exponent = value.as_tuple().exponent
            assert isinstance(exponent, int) and exponent >= -9, (name, value)
            assert value >= 0
        if name == "tags":
            assert isinstance(value, list)
            assert len(value) == len(set(value)) and set(value) <= set(TAGS)
        if name in ("content", "sdk_options", "config", "tool_input", "input_data"):
            assert isinstance(value, dict), name
    if "deleted_at" in values:
        assert values["deleted_at"] is None


@pytest.mark.parametrize("factory", ALL_FACTORIES, ids=lambda f: f.__name__)
def test_every_factory_builds_valid_entities(factory: type[DataFactory[Any]]) -> None:
    for entity in factory.batch(25):
        assert isinstance(entity, factory.__model__)
        values = entity.model_dump()
        model: type[EntityModel] = factory.__model__
        validator_for(model).row(values)
        _check_plausible(values)
        if isinstance(entity, SoftDeleteModel):
            assert not entity.is_deleted


@pytest.mark.parametrize("factory", ALL_FACTORIES, ids=lambda f: f.__name__)
async def test_every_factory_persists_with_its_parents(
    session: AsyncSession, factory: type[DataFactory[Any]]
) -> None:
    rows = await persist(session, factory, count=3)
    assert len(rows) == 3
    assert all(isinstance(row, factory.__model__) for row in rows)
    assert await row_count(session, factory.__model__) == 3
    for field, parent in factory.__parents__.items():
        parent_ids = {getattr(row, field) for row in rows}
        assert len(parent_ids) == 1  # one parent shared by the batch
        stored = await session.get(parent.__model__, parent_ids.pop())
        assert stored is not None


async def test_sessions_get_a_user_and_keep_a_given_one(session: AsyncSession) -> None:
    sessions = await persist(session, SessionFactory, count=3)
    assert await row_count(session, UserModel) == 1
    user = await session.get(UserModel, sessions[0].user_id)
    assert user is not None and all(s.user_id == user.id for s in sessions)

    more = await persist(session, SessionFactory, count=2, user_id=user.id, status=SessionStatus.ACTIVE)
    assert await row_count(session, UserModel) == 1
    assert [s.status for s in more] == [SessionStatus.ACTIVE, SessionStatus.ACTIVE]
    assert all(s.completed_at is None for s in more)


async def test_task_execution_creates_task_and_user(session: AsyncSession) -> None:
    execution = await persist_one(session, TaskExecutionFactory)
    task = await session.get(TaskFactory.__model__, execution.task_id)
    assert task is not None
    assert await session.get(UserModel, task.user_id) is not None
    assert execution.session_id is None


async def test_message_batches_get_consecutive_sequence_numbers(session: AsyncSession) -> None:
    owner = await persist_one(session, SessionFactory)
    first = await persist(session, MessageFactory, count=5, session_id=owner.id)
    second = await persist(session, MessageFactory, count=3, session_id=owner.id)
    assert [m.sequence_number for m in first + second] == list(range(1, 9))
    assert first[0].message_type == MessageType.SYSTEM
    statement = select(MessageModel.sequence_number).where(col(MessageModel.session_id) == owner.id)
    stored = sorted((await session.exec(statement)).all())
    assert stored == list(range(1, 9))

    other = await persist(session, MessageFactory, count=2)
    assert [m.sequence_number for m in other] == [1, 2]
    assert other[0].session_id != owner.id
    assert await row_count(session, SessionModel) == 2


async def test_tool_calls_of_one_session_have_unique_tool_use_ids(session: AsyncSession) -> None:
    calls = await persist(session, ToolCallFactory, count=200)
    assert len({c.tool_use_id for c in calls}) == 200
    assert len({c.session_id for c in calls}) == 1


def test_unique_identities_and_no_id_collisions_between_factories() -> None:
    seed_factories(7)
    users = UserFactory.batch(500)
    assert len({u.email for u in users}) == 500
    assert len({u.username for u in users}) == 500
    ids = [entity.id for factory in ALL_FACTORIES for entity in factory.batch(50)]
    assert len(set(ids)) == len(ids)


def test_message_builds_count_per_session() -> None:
    owner = SessionFactory.build()
    numbers = [m.sequence_number for m in MessageFactory.batch(4, session_id=owner.id)]
    assert numbers == [1, 2, 3, 4]


_DUMP = textwrap.dedent(
    """
    import sys
    from datalayer.factories import ALL_FACTORIES, seed_factories

    seed_factories(int(sys.argv[1]))
    for factory in ALL_FACTORIES:
        for entity in factory.batch(3):
            print(factory.__name__, sorted(entity.model_dump(mode="json").items()))
    """
)


def _dump(seed: int) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _DUMP, str(seed)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return result.stdout


def test_same_seed_gives_same_data_in_separate_processes() -> None:
    first, second, other = _dump(42), _dump(42), _dump(43)
    assert first.count("\n") == 3 * len(ALL_FACTORIES)
    assert first == second
    assert first != other


async def test_same_seed_gives_identical_rows(db: Database) -> None:
    dumps: list[list[dict[str, Any]]] = []
    for _ in range(2):
        seed_factories(5)
        async with db.session() as unit:
            sessions = await persist(unit, SessionFactory, count=4)
            messages = await persist(unit, MessageFactory, count=3, session_id=sessions[0].id)
            dumps.append([row.model_dump() for row in [*sessions, *messages]])
        async with db.session() as unit:
            # Remove them again: the second round inserts the very same keys.
            for user_id in {row.user_id for row in sessions}:
                assert await Repository(UserModel, unit).delete(user_id)
    assert dumps[0] == dumps[1]


def test_missing_polyfactory_names_the_extra() -> None:
    code = "import sys; sys.modules['polyfactory'] = None; import datalayer.factories"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "pip install 'sqlmodel-datalayer[factories]'" in result.stderr


# polyfactory's own API: create_async / create_batch_async / register_fixture.

register_fixture(UserFactory)  # defines the fixture `user_factory` in this module


async def test_create_async_persists_the_entity_and_its_parents(session: AsyncSession) -> None:
    with using_session(session):
        message = await MessageFactory.create_async()
    owner = await session.get(SessionModel, message.session_id)
    assert owner is not None
    assert await session.get(UserModel, owner.user_id) is not None
    assert await session.get(MessageModel, message.id) is not None
    assert message.sequence_number == 1
    assert (await row_count(session, UserModel), await row_count(session, SessionModel)) == (1, 1)


async def test_create_batch_async_shares_one_parent_and_continues_sequences(session: AsyncSession) -> None:
    with using_session(session):
        sessions = await SessionFactory.create_batch_async(3)
        owner = sessions[0]
        first = await MessageFactory.create_batch_async(4, session_id=owner.id)
        second = await MessageFactory.create_batch_async(2, session_id=owner.id)
    assert len({s.user_id for s in sessions}) == 1
    assert await row_count(session, UserModel) == 1
    assert await row_count(session, SessionModel) == 3
    assert [m.sequence_number for m in first + second] == [1, 2, 3, 4, 5, 6]
    statement = select(MessageModel.sequence_number).where(col(MessageModel.session_id) == owner.id)
    assert sorted((await session.exec(statement)).all()) == [1, 2, 3, 4, 5, 6]


async def test_create_async_validates_through_the_repository(session: AsyncSession) -> None:
    with using_session(session), pytest.raises(InvalidDataError) as caught:
        await UserFactory.create_async(email="x" * 400)
    assert caught.value.field == "email"
    assert await row_count(session, UserModel) == 0


async def test_create_async_without_a_unit_of_work_says_how_to_get_one() -> None:
    with pytest.raises(ConfigurationException, match="datalayer_session"):
        await UserFactory.create_async()
    assert DataFactory.__async_session__ is None


async def test_register_fixture_gives_a_factory_that_persists(
    session: AsyncSession, user_factory: type[UserFactory]
) -> None:
    with using_session(session):
        users = await user_factory.create_batch_async(2, is_active=False)
    assert [u.is_active for u in users] == [False, False]
    assert await row_count(session, UserModel) == 2


async def test_create_batch_async_is_seeded_like_persist(db: Database) -> None:
    dumps: list[list[dict[str, Any]]] = []
    for use_polyfactory_api in (True, False):
        seed_factories(11)
        async with db.session() as unit:
            with using_session(unit):
                if use_polyfactory_api:
                    sessions = await SessionFactory.create_batch_async(3)
                    messages = await MessageFactory.create_batch_async(2, session_id=sessions[0].id)
                else:
                    sessions = await persist(unit, SessionFactory, 3)
                    messages = await persist(unit, MessageFactory, 2, session_id=sessions[0].id)
            dumps.append([row.model_dump() for row in [*sessions, *messages]])
        async with db.session() as unit:
            user_id = dumps[-1][0]["user_id"]
            assert await Repository(UserModel, unit).delete(user_id)
    assert dumps[0] == dumps[1]


_OWN_FACTORIES = textwrap.dedent(
    """
    import asyncio, sys

    import factories  # the project's own package, not datalayer's
    from datalayer import Database
    from datalayer.seeding import SeedSizes, seed_database

    async def main() -> None:
        async with Database(sys.argv[1]) as db:
            await db.create_all()
            sizes = SeedSizes(users=2, sessions=1, tasks=0, reports=0, templates=0, mcp_servers=0)
            counts = await seed_database(db, sizes, seed=1, show_progress=False)
        print(factories.OWN, counts["users"], counts["sessions"])

    asyncio.run(main())
    """
)


def test_a_projects_own_factories_package_does_not_break_seeding(tmp_path: Path) -> None:
    (tmp_path / "factories").mkdir()
    (tmp_path / "factories" / "__init__.py").write_text("OWN = 'ours'\n")
    url = f"sqlite+aiosqlite:///{tmp_path / 'seeded.db'}"
    result = subprocess.run(
        [sys.executable, "-c", _OWN_FACTORIES, url], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ours", "2", "1"]
