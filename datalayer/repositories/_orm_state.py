"""Entities built from rows datalayer already holds, made persistent without reading them back.

Ids are client-side UUIDv7 and no column has a server default, so a validated row is
exactly the stored row: ``create``/``create_many`` insert it with Core and build the
entity from it, and ``update`` builds (or refreshes) the entity from its RETURNING row,
skipping the ORM's row loading and its unit of work.

The private SQLAlchemy API datalayer uses lives here: what a flush does for the rows it
inserted (identity key, identity map, the record in the current transaction, so that a
rollback, of a savepoint too, expunges the entity exactly as it expunges flushed objects),
done directly (``Mapper._identity_key_from_state``, ``Session._transaction``,
``SessionTransaction._new``), or through ``Session._save_impl`` and
``Session._register_persistent`` when the session has listeners for the events those fire.
``tests/test_orm_state.py`` fails loudly if SQLAlchemy changes any of them.
"""

# This module's job is SQLAlchemy's private ORM state API (see above); pyright strict reports
# each use, so that one check is off here and nowhere else.
# pyright: reportPrivateUsage=false

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.mutable import Mutable
from sqlalchemy.orm import Mapper, Session, configure_mappers
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from datalayer.tracking import TrackedDict, TrackedList
from datalayer.types import MONEY_SCALE, JSONDict, Money, StringList

__all__ = ["EntityBuilder", "attach_inserted"]

T = TypeVar("T")
_MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


class EntityBuilder(Generic[T]):
    """Builds entities of one model from complete rows, with the values a fresh load would give."""

    def __init__(self, model: type[T]) -> None:
        # Relationship attributes get their implementations when mappers are configured
        # (a query does it on first use; building entities must not come first).
        configure_mappers()
        mapper: Mapper[T] = sa.inspect(model)
        self._new_instance = mapper.class_manager.new_instance
        #: Attribute names, in the table's column order (what ``RETURNING *`` gives).
        self.names = tuple(mapper.get_property_by_column(c).key for c in mapper.local_table.columns)
        mutable: list[tuple[str, type[Mutable]]] = []
        datetimes: list[str] = []
        money: list[str] = []
        for column in mapper.local_table.columns:
            name = mapper.get_property_by_column(column).key
            kind = column.type
            if isinstance(kind, JSONDict):
                mutable.append((name, TrackedDict))
            elif isinstance(kind, StringList):
                mutable.append((name, TrackedList))
            elif isinstance(kind, Money):
                money.append(name)
            elif isinstance(kind, sa.DateTime) or isinstance(getattr(kind, "impl", None), sa.DateTime):
                datetimes.append(name)
        self._mutable = tuple(mutable)
        self._datetimes = tuple(datetimes)
        self._money = tuple(money)

    def stored(self, row: dict[str, Any]) -> dict[str, Any]:
        """Return ``row`` (changed in place) with each value as the database gives it back.

        Aware datetimes in UTC, money at its full scale (``Decimal("1.500000000")``).
        """
        for name in self._datetimes:
            value = row.get(name)
            if isinstance(value, datetime) and value.tzinfo is not UTC:
                row[name] = value.astimezone(UTC)
        for name in self._money:
            value = row.get(name)
            if isinstance(value, Decimal):
                row[name] = value.quantize(_MONEY_QUANTUM)
        return row

    def build(self, row: Mapping[str, Any]) -> T:
        """Return a new (transient) entity holding ``row``, JSON and lists change-tracked."""
        entity = self._new_instance()
        values = entity.__dict__
        values.update(row)
        if self._mutable:
            state = instance_state(entity)
            for name, kind in self._mutable:
                value = values[name]
                if value is not None:
                    tracked = _tracked(kind, name, value)
                    tracked._parents[state] = name
                    values[name] = tracked
        return entity

    def refresh(self, entity: T, row: Mapping[str, Any]) -> None:
        """Overwrite a loaded entity's column values with ``row``, as committed (not dirty) state."""
        mutable = dict(self._mutable)
        state = instance_state(entity)
        for name, value in row.items():
            kind = mutable.get(name)
            if kind is not None and value is not None:
                value = _tracked(kind, name, value)
                value._parents[state] = name
            set_committed_value(entity, name, value)


def _tracked(kind: type[Mutable], name: str, value: object) -> Mutable:
    """Return ``value`` as a change-tracking TrackedDict / TrackedList (as the ORM's load hook does)."""
    tracked: Mutable | None = kind.coerce(name, value)
    if tracked is None:  # coerce() raises for a wrong type; None only for None, excluded by callers
        raise ValueError(f"{name}: cannot track {value!r}")
    return tracked


def attach_inserted(session: Session, entities: Sequence[object]) -> None:
    """Make entities whose rows the current transaction just wrote persistent in ``session``.

    What a flush does after its INSERT, for entities ``EntityBuilder`` built (never attached,
    nothing modified): each gets its identity key, enters the identity map and is recorded
    in the innermost transaction, so that a rollback expunges it. ``before_attach``
    listeners see every entity before any is attached; listeners for the later attach
    events get them from SQLAlchemy's own steps. Nothing may be awaited in between, or an
    autoflush could INSERT them a second time.
    """
    dispatch = session.dispatch
    if dispatch.after_attach or dispatch.transient_to_pending or dispatch.pending_to_persistent:
        _attach_through_the_session(session, entities)
        return
    states = [instance_state(entity) for entity in entities]
    if dispatch.before_attach:
        for state in states:
            dispatch.before_attach(session, state)
    transaction = session._transaction
    if transaction is None:  # callers have just written in a transaction: not expected
        raise InvalidRequestError("no transaction to record the inserted entities in")
    recorded = transaction._new
    identity_map = session.identity_map
    hash_key = session.hash_key
    for state in states:
        # What _save_impl + _register_persistent leave in the end, without the event dispatch
        # and the checks a fresh entity cannot fail: 3.3 instead of 11.5 µs an entity.
        state.key = state.mapper._identity_key_from_state(state)
        state.session_id = hash_key
        identity_map.replace(state)
        recorded[state] = True


def _attach_through_the_session(session: Session, entities: Sequence[object]) -> None:
    """``attach_inserted`` by SQLAlchemy's own steps, which fire every attach event."""
    states = {instance_state(entity) for entity in entities}
    for state in states:
        session._save_impl(state)
    session._register_persistent(states)
