"""The sanitizer's fast path never accepts what its full check refuses (hypothesis, backend-free)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from datalayer.errors import InvalidDataError
from datalayer.sanitize import MAX_LIST_ITEM_LENGTH, _clean, check_value

_text = st.text(alphabet=st.characters(codec=None, categories=None), max_size=8) | st.sampled_from(
    ["\x00", "a\x00b", "\ud800", "é", "x" * (MAX_LIST_ITEM_LENGTH + 1)]
)
_numbers = (
    st.integers(min_value=-(2**64), max_value=2**64)
    | st.sampled_from([2**63 - 1, 2**63, -(2**63), 10**1000, -(10**1000), 10**1000 - 1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e16, -1e16, 9.99e15])
)
_json = st.recursive(
    st.none() | st.booleans() | _numbers | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text | st.integers(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_the_fast_path_accepts_only_what_the_full_check_accepts(value: object) -> None:
    if _clean(value):
        check_value("field", value)  # must not raise


def test_the_fast_path_defers_every_refused_value() -> None:
    for bad in ("a\x00", "\ud800", [10**1000], {"k": float("nan")}, {1: "x"}, 2**63, ["x" * 501], [1e16]):
        assert not _clean(bad)
        try:
            check_value("field", bad)
        except InvalidDataError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
