"""Type guards for values that arrive as ``object`` (caller input, decoded JSON).

``isinstance(value, list)`` tells a type checker nothing about the items; these say what the
code after the check may assume (items are still ``object`` and are checked one by one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeGuard

__all__ = ["is_list", "is_mapping", "is_sequence"]


def is_list(value: object) -> TypeGuard[list[object]]:
    """Return True if ``value`` is a list (a JSON array)."""
    return isinstance(value, list)


def is_mapping(value: object) -> TypeGuard[Mapping[object, object]]:
    """Return True if ``value`` is a mapping (a JSON object, keys not yet checked)."""
    return isinstance(value, Mapping)


def is_sequence(value: object) -> TypeGuard[Sequence[object]]:
    """Return True if ``value`` is a sequence other than a string (a list, a tuple)."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)
