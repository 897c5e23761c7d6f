"""Hostile and awkward input through repository methods, on SQLite and PostgreSQL.

Every value is either stored and read back exactly (same value, same types, through
``create`` and through ``update``) or refused with an ``InvalidDataError`` naming the
field, with nothing written. A raw driver exception fails the test. The number of inputs
tried is printed in the terminal summary.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database
from datalayer.errors import InvalidDataError
from datalayer.models import (
    EntityModel,
    HookExecutionModel,
    ReportModel,
    SessionModel,
    SessionTemplateModel,
    TaskExecutionModel,
    TaskModel,
    ToolCallModel,
    UserModel,
)
from datalayer.repositories import (
    HookExecutionRepository,
    MessageRepository,
    PermissionDecisionRepository,
    ReportRepository,
    Repository,
    SessionRepository,
    SessionTemplateRepository,
    TaskRepository,
    ToolCallRepository,
    UserRepository,
)
from datalayer.testing import COUNTS
from tests.helpers import make_session, make_user, row_count

SECTION = "hostile inputs tried (tests/test_hostile_input.py)"
MB = 1_000_000


def nested(depth: int) -> dict[str, Any]:
    """Return ``{"n": {"n": ... {"leaf": True}}}`` with ``depth`` levels of objects."""
    document: dict[str, Any] = {"leaf": True}
    for _ in range(depth - 1):
        document = {"n": document}
    return document


def nested_list(depth: int) -> list[Any]:
    """Return ``[[...[1]...]]`` with ``depth`` levels of arrays."""
    document: list[Any] = [1]
    for _ in range(depth - 1):
        document = [document]
    return document


#: SQL, JSON and format-string fragments tried in every text parameter.
FRAGMENTS = [
    "'; DROP TABLE users; --",
    "' OR '1'='1",
    '" OR 1=1 --',
    "1; SELECT pg_sleep(10)",
    "%",
    "_",
    "%%",
    "\\",
    "\\'",
    "*/ /*",
    "$1",
    ":name",
    "?",
    "%s",
    "{0}",
    "{text}",
    '{"text": "x"}',
    '"}',
    "$.text",
    "->> 'text'",
    "@>",
    "[]",
    "null",
    "",
    " ",
    "é",
    "e\u0301",
    "😀",
    "\u2028\u2029",
    "\ufeff",
    "\t\r\n",
    "x" * 10_000,
]

#: Values that must be refused wherever a string goes.
BAD_TEXT = ["a\x00b", "\x00", "\ud800", "a\udfffb"]

OPERATOR_KEYS = {
    "$gt": 1,
    "$where": "1 == 1",
    "@>": [1],
    "->>": "x",
    "#>>": "{a}",
    "?|": ["a"],
    "'; DROP TABLE reports; --": "--",
    "a.b": {"$ne": None},
    "": "empty key",
    "__proto__": {"polluted": True},
    "%s": "{0}",
    "😀": "😀",
}


@dataclass(frozen=True)
class Case:
    """One value for one field, and whether it must be stored (True) or refused (False)."""

    name: str
    model: type[EntityModel]
    field: str
    value: Any
    stored: bool
    comes_back: Any = None  # what is read back when it differs from ``value``


CASES = [
    # Text fields (tasks.prompt_template is unbounded, tasks.name is VARCHAR(255)).
    Case("text-1MB", TaskModel, "prompt_template", "x" * MB, True),
    Case("text-1MB-emoji", TaskModel, "prompt_template", "😀" * (MB // 4), True),
    Case("text-emoji-zwj", TaskModel, "prompt_template", "👩‍👩‍👧 🏳️‍🌈 e\u0301 \u2028", True),
    Case("text-empty", TaskModel, "prompt_template", "", True),
    *[Case(f"text-fragment-{i}", TaskModel, "prompt_template", f, True) for i, f in enumerate(FRAGMENTS)],
    *[Case(f"text-bad-{i}", TaskModel, "prompt_template", v, False) for i, v in enumerate(BAD_TEXT)],
    Case("name-1MB", TaskModel, "name", "x" * MB, False),
    Case("name-nul", TaskModel, "name", "a\x00", False),
    Case("name-surrogate", TaskModel, "name", "\udc00", False),
    Case("text-not-a-string", TaskModel, "prompt_template", 12, False),
    # pydantic (lax mode) decodes UTF-8 bytes into text; bytes that are not UTF-8 are refused.
    Case("text-bytes", TaskModel, "prompt_template", b"bytes", True, "bytes"),
    Case("text-bytes-not-utf8", TaskModel, "prompt_template", b"\xff\xfe", False),
    # JSON documents.
    Case("json-operator-keys", ReportModel, "content", OPERATOR_KEYS, True),
    Case("json-1MB-string", ReportModel, "content", {"text": "y" * MB}, True),
    Case("json-nested-99", ReportModel, "content", nested(99), True),
    Case("json-nested-list-99", ReportModel, "content", {"l": nested_list(98)}, True),
    Case("json-nested-101", ReportModel, "content", nested(101), False),
    Case("json-nested-100000", ReportModel, "content", nested(100_000), False),
    Case("json-int-64bit-edges", ReportModel, "content", {"a": 2**63 - 1, "b": -(2**63), "c": 2**64}, True),
    Case("json-int-huge", ReportModel, "content", {"big": 2**200, "neg": -(10**300)}, True),
    Case("json-int-1001-digits", ReportModel, "content", {"big": 10**1000}, False),
    Case("json-int-10000-digits", ReportModel, "content", {"big": 7 * 10**9999}, False),
    Case("json-floats", ReportModel, "content", {"a": 0.1, "b": -2.5e-300, "c": 5e-324, "d": 1.0}, True),
    # PostgreSQL prints jsonb numbers without exponent: 1e16 and up would come back as ints.
    Case("json-float-big", ReportModel, "content", {"f": 1.5e300}, False),
    Case("json-float-1e16", ReportModel, "content", {"f": [1e16]}, False),
    Case("json-float-below-1e16", ReportModel, "content", {"f": 9.5e15, "g": -9999999999999998.0}, True),
    Case("json-int-instead", ReportModel, "content", {"f": int(1.5e300)}, True),
    Case("json-nan", ReportModel, "content", {"x": math.nan}, False),
    Case("json-inf", ReportModel, "content", {"x": [1, math.inf]}, False),
    Case("json-ninf", ReportModel, "content", {"x": {"y": -math.inf}}, False),
    Case("json-nul-value", ReportModel, "content", {"text": "a\x00b"}, False),
    Case("json-nul-key", ReportModel, "content", {"a\x00": 1}, False),
    Case("json-nul-deep", ReportModel, "content", {"a": [{"b": ["ok", "\x00"]}]}, False),
    Case("json-surrogate-value", ReportModel, "content", {"k": "\ud83d"}, False),
    Case("json-surrogate-key", ReportModel, "content", {"\udfff": 1}, False),
    Case("json-int-key", ReportModel, "content", {1: "x"}, False),
    Case("json-not-an-object", ReportModel, "content", ["a"], False),
    Case("json-sql-fragments", ReportModel, "content", {"text": FRAGMENTS}, True),
    Case("json-bool-null", ReportModel, "content", {"t": True, "f": False, "n": None, "z": 0}, True),
    Case("tags-fragments", ReportModel, "tags", [f for f in FRAGMENTS if len(f) < 500], True),
    Case("tags-nul", ReportModel, "tags", ["ok", "a\x00"], False),
    Case("tags-surrogate", ReportModel, "tags", ["\ud800"], False),
    Case("tags-1MB", ReportModel, "tags", ["x" * MB], False),
    Case("tags-bare-string", ReportModel, "tags", "tag", False),
    # Numbers.
    Case("int-max-bigint", SessionModel, "api_input_tokens", 2**63 - 1, True),
    Case("int-past-64-bits", SessionModel, "api_input_tokens", 2**64, False),
    Case("int-huge", SessionModel, "api_output_tokens", 10**5000, False),
    Case("int-negative", SessionModel, "api_output_tokens", -1, False),
    Case("int-float", SessionModel, "api_output_tokens", 1.5, False),
    Case("int-string", SessionModel, "api_output_tokens", "12; DROP", False),
    Case("float-max", TaskExecutionModel, "duration_seconds", 1.7976931348623157e308, True),
    Case("float-tiny", TaskExecutionModel, "duration_seconds", 5e-324, True),
    Case("float-nan", TaskExecutionModel, "duration_seconds", math.nan, False),
    Case("float-inf", TaskExecutionModel, "duration_seconds", math.inf, False),
    # Datetimes: naive ones are refused (ambiguous); aware ones come back as the same instant in UTC.
    Case("datetime-naive", SessionTemplateModel, "last_used_at", datetime(2026, 1, 1, 12, 0), False),
    Case(
        "datetime-plus-5",
        SessionTemplateModel,
        "last_used_at",
        datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=5))),
        True,
    ),
    Case("datetime-string-sql", SessionTemplateModel, "last_used_at", "2026-01-01'; --", False),
    # Hook and tool-call text.
    Case("hook-output-operators", HookExecutionModel, "output_data", OPERATOR_KEYS, True),
    Case("tool-error-message-1MB", ToolCallModel, "error_message", "z" * MB, True),
]


async def base_values(session: AsyncSession, model: type[EntityModel]) -> dict[str, object]:
    """Return valid values (parents created) for a row of ``model``."""
    if model is TaskModel:
        return {"user_id": (await make_user(session)).id, "name": "t", "prompt_template": "p"}
    if model is ReportModel:
        return {"user_id": (await make_user(session)).id, "title": "r", "report_type": "k"}
    if model is SessionTemplateModel:
        return {"user_id": (await make_user(session)).id, "name": "tpl"}
    if model is SessionModel:
        return {"user_id": (await make_user(session)).id}
    if model is TaskExecutionModel:
        task = await TaskRepository(session).create(
            user_id=(await make_user(session)).id, name="t", prompt_template="p"
        )
        return {"task_id": task.id}
    if model is HookExecutionModel:
        return {"session_id": (await make_session(session)).id, "hook_type": "pre"}
    if model is ToolCallModel:
        return {"session_id": (await make_session(session)).id, "tool_use_id": "tu-1", "tool_name": "Bash"}
    raise AssertionError(f"no base values for {model.__name__}")


def assert_same(got: object, expected: object, path: str = "value") -> None:
    """Assert equal values of identical types, recursively (1 is not 1.0, True is not 1)."""
    if isinstance(expected, datetime):
        assert isinstance(got, datetime), path
        assert got == expected, path
        assert got.utcoffset() == timedelta(0), path
        return
    # MutableDict / MutableList (change tracking) are the dict and list that came back.
    plain = dict if isinstance(got, dict) else list if isinstance(got, list) else type(got)
    assert plain is type(expected), f"{path}: {type(got).__name__} != {type(expected).__name__}"
    if isinstance(expected, dict):
        assert isinstance(got, dict)
        assert sorted(got) == sorted(expected), path
        for key in expected:
            assert_same(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list)
        assert len(got) == len(expected), path
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(expected, float) and expected == 0:
        assert got == expected, path
    else:
        assert got == expected, path


def assert_names_field(error: InvalidDataError, field: str) -> None:
    """Assert the error names the field (or a path inside it), in its attribute and message."""
    assert error.field is not None, str(error)
    assert error.field.split(".")[0].split("[")[0].split(" ")[0] == field, (error.field, str(error))
    assert field in str(error)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_value_is_stored_exactly_or_refused(db: Database, case: Case) -> None:
    async with db.session() as s:
        base = await base_values(s, case.model)
        existing = await Repository(case.model, s).create(**base)
    COUNTS.add(SECTION, db.backend)
    if case.stored:
        async with db.session() as s:
            unique = {"tool_use_id": "tu-2"} if case.model is ToolCallModel else {}
            created = await Repository(case.model, s).create(**{**base, **unique, case.field: case.value})
        async with db.session() as s:
            await Repository(case.model, s).update(existing.id, **{case.field: case.value})
        for row_id in (created.id, existing.id):
            async with db.session(read_only=True) as s:
                again = await Repository(case.model, s).get(row_id)
            assert_same(
                getattr(again, case.field), case.value if case.comes_back is None else case.comes_back
            )
        return
    with pytest.raises(InvalidDataError) as on_create:
        async with db.session() as s:
            await Repository(case.model, s).create(**{**base, case.field: case.value})
    assert_names_field(on_create.value, case.field)
    with pytest.raises(InvalidDataError) as on_update:
        async with db.session() as s:
            await Repository(case.model, s).update(existing.id, **{case.field: case.value})
    assert_names_field(on_update.value, case.field)
    async with db.session(read_only=True) as s:
        assert await row_count(s, case.model) == 1
        unchanged = await Repository(case.model, s).get(existing.id)
    assert getattr(unchanged, case.field) == getattr(existing, case.field)


# Each call takes the unit of work and the hostile value (typed Any: wrong on purpose).
Call = Callable[[AsyncSession, Any], Awaitable[object]]

ID_CALLS: list[Call] = [
    lambda s, bad: UserRepository(s).get(bad),
    lambda s, bad: UserRepository(s).get_by_id(bad),
    lambda s, bad: UserRepository(s).exists(bad),
    lambda s, bad: UserRepository(s).update(bad, username="x"),
    lambda s, bad: UserRepository(s).delete(bad),
    lambda s, bad: UserRepository(s).soft_delete(bad),
    lambda s, bad: SessionRepository(s).get_by_user(bad),
    lambda s, bad: MessageRepository(s).get_by_session(bad),
    lambda s, bad: MessageRepository(s).get_next_sequence_number(bad),
    lambda s, bad: SessionTemplateRepository(s).update_usage_stats(bad),
]

WRONG_IDS: list[object] = [
    123,
    -1,
    2**70,
    1.5,
    None,
    True,
    b"\x00" * 16,
    "not-a-uuid",
    "'; DROP TABLE users; --",
    "00000000-0000-0000-0000-00000000000g",
    "\x00",
    "\ud800",
    [],
    {},
    UUID,
]


async def test_wrong_id_types_are_refused(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s)
    for bad in WRONG_IDS:
        for call in ID_CALLS:
            COUNTS.add(SECTION, db.backend)
            with pytest.raises(InvalidDataError) as caught:
                async with db.session() as s:
                    await call(s, bad)
            assert caught.value.field is not None, (bad, caught.value)
            assert caught.value.field.endswith("id"), (bad, caught.value)
        if bad is not None:  # None means "any user" there
            with pytest.raises(InvalidDataError):
                async with db.session() as s:
                    await TaskRepository(s).get_by_tags(["a"], user_id=bad)  # type: ignore[arg-type]  # on purpose
    async with db.session(read_only=True) as s:
        assert (await UserRepository(s).get(user.id)).username == user.username
        # A well-formed id of no row: a normal "not found", not an error about the type.
        assert await UserRepository(s).get_by_id(UUID(int=0)) is None
        assert await UserRepository(s).get_by_id(str(user.id).upper()) is not None


PAGE_CALLS: list[Callable[[AsyncSession, UUID, Any, Any], Awaitable[object]]] = [
    lambda s, user_id, skip, limit: UserRepository(s).get_all(skip=skip, limit=limit),
    lambda s, user_id, skip, limit: SessionRepository(s).get_by_user(user_id, skip=skip, limit=limit),
    lambda s, user_id, skip, limit: TaskRepository(s).get_by_tags(["a"], skip=skip, limit=limit),
    lambda s, user_id, skip, limit: SessionTemplateRepository(s).search_by_tags(
        ["a"], skip=skip, limit=limit
    ),
]

BAD_PAGES: list[tuple[object, object, str]] = [
    (-1, 10, "skip"),
    (-(2**70), 10, "skip"),
    (2**63, 10, "skip"),
    (10**100, 10, "skip"),
    (0, 0, "limit"),
    (0, -5, "limit"),
    (0, 10**9, "limit"),
    (0, 2**64, "limit"),
    ("0", 10, "skip"),
    (0, "10; DROP TABLE users", "limit"),
    (0, 1.5, "limit"),
    (0.0, 10, "skip"),
    (True, 10, "skip"),
    (None, 10, "skip"),
    (0, math.inf, "limit"),
    (0, math.nan, "limit"),
]


async def test_bad_pagination_is_refused(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s)
    for skip, limit, field in BAD_PAGES:
        for call in PAGE_CALLS:
            COUNTS.add(SECTION, db.backend)
            with pytest.raises(InvalidDataError) as caught:
                async with db.session(read_only=True) as s:
                    await call(s, user.id, skip, limit)
            assert caught.value.field == field, (skip, limit, caught.value)
    async with db.session(read_only=True) as s:
        # Far past the end is simply empty.
        assert await UserRepository(s).get_all(skip=2**40, limit=10_000) == []


#: Lookups by a text parameter and what they return when nothing matches.
TEXT_CALLS: list[tuple[str, Call, object]] = [
    ("email", lambda s, text: UserRepository(s).get_by_email(text), None),
    ("username", lambda s, text: UserRepository(s).get_by_username(text), None),
    ("email", lambda s, text: UserRepository(s).email_exists(text), False),
    ("username", lambda s, text: UserRepository(s).username_exists(text), False),
    ("tool_use_id", lambda s, text: ToolCallRepository(s).get_by_tool_use_id(text), None),
    ("tool_use_id", lambda s, text: HookExecutionRepository(s).get_by_tool_use_id(text), []),
    ("search_text", lambda s, text: ReportRepository(s).search_content(text), []),
    ("tags", lambda s, text: TaskRepository(s).get_by_tags([text]), []),
    ("tags", lambda s, text: SessionTemplateRepository(s).search_by_tags([text]), []),
]

#: Parameters that take one of a fixed set of values: any fragment is refused.
CHOICE_CALLS: list[tuple[str, Call]] = [
    ("status", lambda s, text: SessionRepository(s).get_by_status(text)),
    ("decision", lambda s, text: PermissionDecisionRepository(s).count_by_decision(UUID(int=1), text)),
]


async def test_fragments_in_every_text_parameter(db: Database) -> None:
    async with db.session() as s:
        user = await make_user(s, username="plain", email="plain@example.com")
        parent = await make_session(s, user_id=user.id)
        await ToolCallRepository(s).create(session_id=parent.id, tool_use_id="tu", tool_name="Bash")
        await HookExecutionRepository(s).create(session_id=parent.id, tool_use_id="tu", hook_type="pre")
        await ReportRepository(s).create(
            user_id=user.id, title="r", report_type="k", content={"text": "plain"}
        )
        await TaskRepository(s).create(user_id=user.id, name="t", prompt_template="p", tags=["plain"])
        await SessionTemplateRepository(s).create(user_id=user.id, name="tpl", tags=["plain"], is_public=True)
    for fragment in [*FRAGMENTS, "plain%", "PLAIN%", "pla_n", "%plain%", "plain' OR '1'='1", "tu%"]:
        async with db.session(read_only=True) as s:
            for _field, call, nothing in TEXT_CALLS:
                COUNTS.add(SECTION, db.backend)
                assert await call(s, fragment) == nothing, (_field, fragment)
        for field, call in CHOICE_CALLS:
            COUNTS.add(SECTION, db.backend)
            with pytest.raises(InvalidDataError) as caught:
                async with db.session(read_only=True) as s:
                    await call(s, fragment)
            assert caught.value.field == field
    async with db.session(read_only=True) as s:
        assert await row_count(s, UserModel) == 1


async def test_bad_text_parameters_are_refused(db: Database) -> None:
    for bad in [*BAD_TEXT, 12, None, b"x", ["list"]]:
        for field, call, _nothing in TEXT_CALLS:
            COUNTS.add(SECTION, db.backend)
            with pytest.raises(InvalidDataError) as caught:
                async with db.session(read_only=True) as s:
                    await call(s, bad)
            assert caught.value.field == field, (bad, caught.value)


async def test_fragments_are_found_literally(db: Database) -> None:
    """A row whose text *is* the fragment is found by it, and only that row."""
    async with db.session() as s:
        user = await make_user(s)
        decoy = await ReportRepository(s).create(
            user_id=user.id, title="d", report_type="k", content={"text": "x"}
        )
    for i, fragment in enumerate(f for f in FRAGMENTS if len(f) < 150):
        COUNTS.add(SECTION, db.backend)
        async with db.session() as s:
            report = await ReportRepository(s).create(
                user_id=user.id, title="r", report_type="k", content={"text": fragment}
            )
            task = await TaskRepository(s).create(
                user_id=user.id, name="t", prompt_template="p", tags=[fragment]
            )
            named = await UserRepository(s).create(email=f"u{i}@example.com", username=fragment or "-")
        async with db.session(read_only=True) as s:
            assert [r.id for r in await ReportRepository(s).search_content(fragment)] == [report.id]
            assert [t.id for t in await TaskRepository(s).get_by_tags([fragment])] == [task.id]
            found = await UserRepository(s).get_by_username(fragment or "-")
            assert found is not None and found.id == named.id
        async with db.session() as s:
            await ReportRepository(s).delete(report.id)
            await TaskRepository(s).delete(task.id)
            await UserRepository(s).delete(named.id)
    async with db.session(read_only=True) as s:
        assert [r.id for r in await ReportRepository(s).search_content("x")] == [decoy.id]


def test_case_table_covers_both_outcomes() -> None:
    assert any(c.stored for c in CASES)
    assert any(not c.stored for c in CASES)
    assert datetime.now(UTC).tzinfo is UTC
