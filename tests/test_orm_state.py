"""The one private SQLAlchemy API datalayer relies on (``datalayer.repositories._orm_state``).

``Session._save_impl`` (``add`` without the cascade walk) and ``Session._register_persistent``
(what a flush calls for the rows it inserted). If a SQLAlchemy upgrade renames them, changes
their signatures or stops recording the entity in the transaction (so that a rollback
expunges it), these tests fail before anything else does.
"""

from __future__ import annotations

import inspect

import sqlalchemy as sa
from sqlalchemy.orm import Session

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


def test_the_private_session_methods_still_exist_with_the_same_signatures() -> None:
    for name, parameters in (("_save_impl", ["self", "state"]), ("_register_persistent", ["self", "states"])):
        method = getattr(Session, name, None)
        assert method is not None, (
            f"SQLAlchemy removed Session.{name}: update datalayer/repositories/_orm_state"
        )
        assert list(inspect.signature(method).parameters) == parameters, name


def test_attached_entity_is_persistent_and_a_rollback_expunges_it() -> None:
    engine = sa.create_engine("sqlite://")
    with Session(engine) as session:
        session.begin()
        user = _user()
        attach_inserted(session, [user])
        state = sa.inspect(user)
        assert state.persistent and state.key == (UserModel, (user.id,), None)
        assert session.get(UserModel, user.id) is user  # in the identity map, no SQL needed
        assert not session.new and not session.dirty  # nothing left for a flush to write
        session.rollback()
        assert user not in session and state.transient
    engine.dispose()


def test_a_savepoint_rollback_expunges_only_what_it_attached() -> None:
    engine = sa.create_engine("sqlite://")
    with Session(engine) as session:
        session.begin()
        kept = _user()
        attach_inserted(session, [kept])
        nested = session.begin_nested()
        undone = _user()
        attach_inserted(session, [undone])
        nested.rollback()
        assert undone not in session and kept in session
    engine.dispose()
