"""The lighter owner record of change-tracking JSON values (``datalayer.tracking``).

Loaded and created entities hold ``TrackedDict``/``TrackedList``; an in-place change marks
the owner dirty; a value shared by two entities marks both; a dead owner is skipped.
"""

from __future__ import annotations

import gc
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import InstanceState

from datalayer import Database
from datalayer.models import SessionModel, SessionTemplateModel
from datalayer.repositories import SessionRepository
from datalayer.tracking import Parents, TrackedDict, TrackedList
from datalayer.types import uuid7
from tests.helpers import make_session, make_user


def state_of(entity: object) -> InstanceState[Any]:
    state: InstanceState[Any] = inspect(entity)
    return state


def test_parents_keeps_one_owner_then_more_weakly() -> None:
    first, second = SessionModel(user_id=uuid7(), name="a"), SessionModel(user_id=uuid7(), name="b")
    parents = Parents()
    assert list(parents.items()) == []
    parents[state_of(first)] = "sdk_options"
    parents[state_of(first)] = "sdk_options"  # the same owner again: still one
    assert list(parents.items()) == [(state_of(first), "sdk_options")]
    parents[state_of(second)] = "sdk_options"
    assert sorted(key for _, key in parents.items()) == ["sdk_options", "sdk_options"]
    assert parents.pop(state_of(first)) == "sdk_options"
    assert parents.pop(state_of(first), None) is None
    assert list(parents.items()) == [(state_of(second), "sdk_options")]
    del second
    gc.collect()
    assert list(parents.items()) == []


def test_a_dead_owner_is_skipped_when_the_value_changes() -> None:
    entity = SessionModel(user_id=uuid7(), name="gone")
    value: TrackedDict[str, int] = TrackedDict({"k": 1})
    value._parents[state_of(entity)] = "sdk_options"
    del entity
    gc.collect()
    value["k"] = 2  # no owner left: nothing to mark, and no error
    assert value == {"k": 2}


async def test_loaded_and_created_values_are_tracked_and_mark_their_owner(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s)
        created = await make_session(s, user.id, sdk_options={"model": "m"})
        assert isinstance(created.sdk_options, TrackedDict)
        template = SessionTemplateModel(user_id=user.id, name="t", tags=["a"])
        s.add(template)
    async with db.session() as s:
        loaded = await SessionRepository(s).get_by_id(created.id)
        assert loaded is not None
        assert isinstance(loaded.sdk_options, TrackedDict)
        found = await s.get(SessionTemplateModel, template.id)
        assert found is not None
        assert isinstance(found.tags, TrackedList)
        loaded.sdk_options["effort"] = "high"
        found.tags.append("b")
        assert s.is_modified(loaded)
        assert s.is_modified(found)
    async with db.session(read_only=True) as s:
        again = await SessionRepository(s).get_by_id(created.id)
        assert again is not None
        assert again.sdk_options == {"model": "m", "effort": "high"}
        stored = await s.get(SessionTemplateModel, template.id)
        assert stored is not None
        assert stored.tags == ["a", "b"]
