"""The private SQLAlchemy ORM API datalayer relies on (``datalayer.repositories._orm_state``).

What a flush does for the rows it inserted, done directly (``Mapper._identity_key_from_state``,
``Session._transaction``, ``SessionTransaction._new``) or, when the session has listeners for
the attach events, through ``Session._save_impl`` and ``Session._register_persistent``. If a
SQLAlchemy upgrade renames them, changes their signatures or stops recording the entity in
the transaction (so that a rollback expunges it), these tests fail before anything else does.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, MutableMapping

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapper, Session, SessionTransaction

from datalayer.models import UserModel
from datalayer.repositories._orm_state import EntityBuilder, attach_inserted
from datalayer.types import utc_now, uuid7


def _user() -> UserModel:
    now = utc_now()
    row = {
        "id": uuid7(),
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "email": "a@example.com",
        "username": "a",
        "full_name": None,
        "is_active": True,
        "last_login_at": None,
    }
    return EntityBuilder(UserModel).build(row)


@pytest.fixture
def engine() -> Iterator[sa.Engine]:
    """An in-memory SQLite engine: these tests check ORM state only (no SQL is sent)."""
    engine = sa.create_engine("sqlite://")
    yield engine
    engine.dispose()


def test_the_private_orm_api_still_exists_with_the_same_shape(engine: sa.Engine) -> None:
    for name, parameters in (("_save_impl", ["self", "state"]), ("_register_persistent", ["self", "states"])):
        method = getattr(Session, name, None)
        assert method is not None, (
            f"SQLAlchemy removed Session.{name}: update datalayer/repositories/_orm_state"
        )
        assert list(inspect.signature(method).parameters) == parameters, name
    key_of_state = getattr(Mapper, "_identity_key_from_state", None)
    assert key_of_state is not None, "SQLAlchemy removed Mapper._identity_key_from_state"
    assert list(inspect.signature(key_of_state).parameters)[:2] == ["self", "state"]
    with Session(engine) as session:
        transaction = session.begin()
        assert session._transaction is transaction, "Session._transaction is no longer the current one"
        assert isinstance(transaction, SessionTransaction)
        assert isinstance(transaction._new, MutableMapping), "SessionTransaction._new is no longer a mapping"


def _session(engine: sa.Engine, listeners: bool) -> Session:
    """Return a session; with ``listeners``, one whose attach events take SQLAlchemy's own steps."""
    session = Session(engine)
    if listeners:
        event.listen(session, "after_attach", lambda session, instance: None)
    return session


@pytest.mark.parametrize("listeners", [False, True], ids=["direct", "attach-listeners"])
def test_attached_entity_is_persistent_and_a_rollback_expunges_it(engine: sa.Engine, listeners: bool) -> None:
    with _session(engine, listeners) as session:
        session.begin()
        user = _user()
        attach_inserted(session, [user])
        state = sa.inspect(user)
        assert state.persistent and state.key == (UserModel, (user.id,), None)
        assert session.get(UserModel, user.id) is user  # in the identity map, no SQL needed
        assert not session.new and not session.dirty  # nothing left for a flush to write
        user.username = "b"
        assert list(session.dirty) == [user]  # changes are tracked as for a loaded entity
        session.rollback()
        assert user not in session and state.transient


@pytest.mark.parametrize("listeners", [False, True], ids=["direct", "attach-listeners"])
def test_a_savepoint_rollback_expunges_only_what_it_attached(engine: sa.Engine, listeners: bool) -> None:
    with _session(engine, listeners) as session:
        session.begin()
        kept = _user()
        attach_inserted(session, [kept])
        nested = session.begin_nested()
        undone = _user()
        attach_inserted(session, [undone])
        nested.rollback()
        assert undone not in session and kept in session


def test_before_attach_listeners_see_every_entity_before_any_is_attached(engine: sa.Engine) -> None:
    with Session(engine) as session:
        session.begin()
        seen: list[tuple[object, int]] = []

        @event.listens_for(session, "before_attach")
        def record(session: Session, instance: object) -> None:
            seen.append((instance, len(session.identity_map)))

        users = [_user(), _user()]
        attach_inserted(session, users)
        assert seen == [(users[0], 0), (users[1], 0)]
        assert all(sa.inspect(user).persistent for user in users)


def test_every_attach_event_fires_for_a_session_that_listens_to_them(engine: sa.Engine) -> None:
    with Session(engine) as session:
        session.begin()
        seen: list[tuple[str, object]] = []
        for name in ("before_attach", "after_attach", "transient_to_pending", "pending_to_persistent"):
            event.listen(session, name, lambda session, instance, name=name: seen.append((name, instance)))
        user = _user()
        attach_inserted(session, [user])
        assert seen == [
            ("before_attach", user),
            ("after_attach", user),
            ("transient_to_pending", user),
            ("pending_to_persistent", user),
        ]
