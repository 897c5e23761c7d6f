"""Change-tracking JSON values: in-place edits of a loaded dict or list mark its entity dirty.

``TrackedDict`` and ``TrackedList`` are SQLAlchemy's ``MutableDict`` and ``MutableList``
with a lighter record of their owner. The stock record is a ``WeakKeyDictionary`` per value:
seven objects for the garbage collector to track, built for every JSON value of every row
loaded or created. A JSON value belongs to one attribute of one entity, so ``Parents`` keeps
that one owner in a weak reference and makes a ``WeakKeyDictionary`` only for a second one.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any, TypeVar

from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.orm import InstanceState

__all__ = ["Parents", "TrackedDict", "TrackedList"]

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")
_T = TypeVar("_T")


class Parents:
    """The owners of one tracked value: ``{InstanceState: attribute name}``, held weakly.

    The mapping API ``sqlalchemy.ext.mutable`` uses (``[state] = key``, ``pop``, ``items``).
    """

    __slots__ = ("_key", "_more", "_state")

    def __init__(self) -> None:
        self._state: weakref.ReferenceType[InstanceState[Any]] | None = None
        self._key: str | None = None
        self._more: weakref.WeakKeyDictionary[InstanceState[Any], str] | None = None

    def __setitem__(self, state: InstanceState[Any], key: str) -> None:
        owner = self._state() if self._state is not None else None
        if owner is None or owner is state:
            self._state, self._key = weakref.ref(state), key
            return
        if self._more is None:
            self._more = weakref.WeakKeyDictionary()
        self._more[state] = key

    def pop(self, state: InstanceState[Any], default: str | None = None) -> str | None:
        """Forget ``state``; return the attribute name it had, else ``default``."""
        if self._state is not None and self._state() is state:
            key, self._state, self._key = self._key, None, None
            return key
        if self._more is not None:
            return self._more.pop(state, default)
        return default

    def items(self) -> Iterator[tuple[InstanceState[Any], str]]:
        """Yield each living owner's state and attribute name."""
        owner = self._state() if self._state is not None else None
        if owner is not None and self._key is not None:
            yield owner, self._key
        if self._more is not None:
            yield from list(self._more.items())


class _OneOwner:
    """Gives each new tracked value a ``Parents`` record (mixed in ahead of SQLAlchemy's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Found before Mutable's memoized ``_parents`` (a non-data descriptor).
        self.__dict__["_parents"] = Parents()


class TrackedDict(_OneOwner, MutableDict[_KT, _VT]):
    """A JSON object whose in-place changes (``entity.content["k"] = v``) mark its entity dirty."""


class TrackedList(_OneOwner, MutableList[_T]):
    """A list whose in-place changes (``entity.tags.append(x)``) mark its entity dirty."""
