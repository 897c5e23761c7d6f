"""What the typed surface promises at run time: bool filters refused, generated inputs in sync."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_type_hints

import pytest
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import typegen
from datalayer.errors import InvalidDataError
from datalayer.models import ALL_MODELS, MessageModel, UserModel, inputs
from datalayer.repositories import (
    BaseRepository,
    BaseSoftDeleteRepository,
    MessageRepository,
    Repository,
    SoftDeleteRepository,
    UserRepository,
)
from datalayer.validation import IMMUTABLE_FIELDS, validator_for
from tests.helpers import make_user


def _bools(value: Any) -> Any:
    """Return ``value`` unchecked: these tests pass what type checkers refuse."""
    return value


async def test_bool_filters_are_refused_before_any_query(session: AsyncSession) -> None:
    user = await make_user(session)
    repo = UserRepository(session)
    mistakes: list[Any] = [
        [user.username == "x"],
        [True],
        ["username = 'x'"],
        col(UserModel.is_active).is_(True),
    ]
    for filters in mistakes:
        for call in (
            lambda f: repo.get_all(filters=_bools(f)),
            lambda f: repo.count(filters=_bools(f)),
            lambda f: repo.paginate(filters=_bools(f)),
        ):
            with pytest.raises(InvalidDataError) as caught:
                await call(filters)
            assert caught.value.field == "filters"
        with pytest.raises(InvalidDataError) as caught:
            async for _ in repo.stream(filters=_bools(filters)):
                pass
        assert caught.value.field == "filters"
    assert [u.id for u in await repo.get_all(filters=[col(UserModel.username) == user.username])] == [user.id]
    assert await repo.count(filters=[col(UserModel.is_active).is_(True)]) == 1


async def test_generic_and_table_repositories_share_the_base(session: AsyncSession) -> None:
    user = await Repository(UserModel, session).create(email="g@example.com", username="g")
    assert await SoftDeleteRepository(UserModel, session).soft_delete(user.id)
    assert await SoftDeleteRepository(UserModel, session).restore(user.id)
    table_repo = UserRepository(session)
    assert isinstance(table_repo, BaseSoftDeleteRepository) and table_repo.model_type is UserModel
    assert isinstance(MessageRepository(session), BaseRepository)
    assert not isinstance(MessageRepository(session), BaseSoftDeleteRepository)
    assert (await table_repo.get(user.id)).email == "g@example.com"


def test_generated_inputs_list_exactly_what_the_validator_accepts() -> None:
    for model in ALL_MODELS:
        base = model.__name__.removesuffix("Model")
        new, changes = getattr(inputs, f"New{base}"), getattr(inputs, f"{base}Changes")
        fields = validator_for(model).fields
        assert set(get_type_hints(new)) == set(fields)
        assert new.__required_keys__ == {n for n, info in fields.items() if info.is_required()}
        assert set(get_type_hints(changes)) == set(fields) - IMMUTABLE_FIELDS
        assert not changes.__required_keys__
    assert set(get_type_hints(inputs.AppendedMessage)) == set(MessageModel.model_fields) - {
        "session_id",
        "sequence_number",
    }


def test_generated_modules_are_up_to_date_and_drift_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert typegen.main(["--check"]) == 0, capsys.readouterr().out
    stale = tmp_path / "inputs.py"
    stale.write_text(typegen.INPUTS_PATH.read_text().replace("    email: str\n", "", 1))
    monkeypatch.setattr(typegen, "INPUTS_PATH", stale)
    assert typegen.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().out
