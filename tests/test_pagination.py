"""Repository.paginate: keyset pages over any deterministic order, on both backends."""

from __future__ import annotations

import base64
import json
from typing import assert_type

import pytest
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer.errors import InvalidDataError
from datalayer.models import SessionModel, UserModel
from datalayer.repositories import Filter, OrderBy, Repository, SoftDeleteRepository
from datalayer.repositories.base import Page
from tests.helpers import at, make_session, make_user


async def walk(
    repo: Repository[UserModel],
    limit: int,
    filters: list[Filter] | None = None,
    order_by: list[OrderBy] | None = None,
    include_deleted: bool = False,
) -> list[list[UserModel]]:
    """Return every page, following cursors until there is none."""
    pages: list[list[UserModel]] = []
    cursor: str | None = None
    while True:
        page = await repo.paginate(
            limit, cursor, filters=filters, order_by=order_by, include_deleted=include_deleted
        )
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def make_users_with_ties(session: AsyncSession, n: int) -> list[UserModel]:
    """Insert ``n`` users whose created_at values repeat in groups of three."""
    return [
        await make_user(session, username=f"u{i:03d}", is_active=i % 3 != 0, created_at=at(i // 3))
        for i in range(n)
    ]


async def test_walking_pages_matches_get_all_with_ties(session: AsyncSession) -> None:
    repo = Repository(UserModel, session)
    await make_users_with_ties(session, 23)
    expected = [u.id for u in await repo.get_all(limit=100)]
    for limit in (1, 2, 3, 5, 22, 23, 100):
        pages = await walk(repo, limit)
        flat = [u.id for page in pages for u in page]
        assert flat == expected
        assert len(set(flat)) == 23
        assert all(len(page) == limit for page in pages[:-1])


async def test_page_type_and_last_page_has_no_cursor(session: AsyncSession) -> None:
    repo = Repository(UserModel, session)
    await make_users_with_ties(session, 4)
    first = await repo.paginate(limit=4)
    assert_type(first, Page[UserModel])
    assert len(first.items) == 4 and first.next_cursor is None
    partial = await repo.paginate(limit=3)
    assert partial.next_cursor is not None
    rest = await repo.paginate(limit=3, cursor=partial.next_cursor)
    assert len(rest.items) == 1 and rest.next_cursor is None


@pytest.mark.parametrize("descending", [False, True])
async def test_custom_order_with_filters(session: AsyncSession, descending: bool) -> None:
    repo = Repository(UserModel, session)
    await make_users_with_ties(session, 17)
    order: list[OrderBy] = [col(UserModel.is_active).desc() if descending else col(UserModel.is_active)]
    filters: list[Filter] = [col(UserModel.username) > "u002"]
    expected = [u.id for u in await repo.get_all(filters=filters, order_by=order)]
    pages = await walk(repo, 4, filters=filters, order_by=order)
    assert [u.id for page in pages for u in page] == expected
    assert len(expected) == 14


async def test_mixed_directions_and_explicit_id(session: AsyncSession) -> None:
    repo = Repository(UserModel, session)
    await make_users_with_ties(session, 14)
    order: list[OrderBy] = [col(UserModel.created_at), col(UserModel.username).desc(), col(UserModel.id)]
    expected = [u.id for u in await repo.get_all(order_by=order)]
    assert [u.id for page in await walk(repo, 3, order_by=order) for u in page] == expected


async def test_empty_table(session: AsyncSession) -> None:
    page = await Repository(UserModel, session).paginate()
    assert page.items == [] and page.next_cursor is None


async def test_soft_deleted_rows_hidden_unless_asked(session: AsyncSession) -> None:
    repo = SoftDeleteRepository(UserModel, session)
    users = await make_users_with_ties(session, 7)
    assert await repo.soft_delete(users[2].id)
    visible = [u.id for page in await walk(repo, 2) for u in page]
    assert users[2].id not in visible and len(visible) == 6
    everything = [u.id for page in await walk(repo, 2, include_deleted=True) for u in page]
    assert everything == [u.id for u in await repo.get_all(include_deleted=True)]


async def test_paginate_on_decimal_and_enum_columns(session: AsyncSession) -> None:
    user = await make_user(session)
    for n in range(7):
        await make_session(session, user.id, total_cost_usd=n % 3, status="active" if n % 2 else "created")
    repo = Repository(SessionModel, session)
    order: list[OrderBy] = [col(SessionModel.total_cost_usd).desc(), col(SessionModel.status)]
    expected = [s.id for s in await repo.get_all(order_by=order)]
    got: list[object] = []
    cursor: str | None = None
    while True:
        page = await repo.paginate(2, cursor, order_by=order)
        got.extend(s.id for s in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert got == expected


def _forge(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "",
        "e30",  # {}
        _forge({"o": "created_at:d,id:d", "v": [["t", "yesterday"], ["u", "x"]]}),
        _forge({"o": "created_at:d,id:d", "v": [["t", "2026-01-01T00:00:00"], ["u", str(at(0))]]}),
        _forge({"o": "created_at:d,id:d", "v": [["i", 5], ["u", "0190a000-0000-7000-8000-000000000000"]]}),
        _forge({"o": "username:a,id:a", "v": [["s", "a"], ["u", "0190a000-0000-7000-8000-000000000000"]]}),
        _forge({"o": "created_at:d,id:d", "v": [["t", "2026-01-01T00:00:00+00:00"]]}),
        _forge([1, 2]),
    ],
)
async def test_bad_cursor_is_invalid_data(session: AsyncSession, cursor: str) -> None:
    await make_user(session)
    with pytest.raises(InvalidDataError) as caught:
        await Repository(UserModel, session).paginate(cursor=cursor)
    assert caught.value.field == "cursor"


async def test_cursor_of_another_ordering_is_rejected(session: AsyncSession) -> None:
    repo = Repository(UserModel, session)
    await make_users_with_ties(session, 3)
    page = await repo.paginate(limit=1)
    assert page.next_cursor is not None
    with pytest.raises(InvalidDataError):
        await repo.paginate(limit=1, cursor=page.next_cursor, order_by=[col(UserModel.username)])


@pytest.mark.parametrize("limit", [0, -1, 10**9])
async def test_bad_limit(session: AsyncSession, limit: int) -> None:
    with pytest.raises(InvalidDataError) as caught:
        await Repository(UserModel, session).paginate(limit=limit)
    assert caught.value.field == "limit"


async def test_nullable_or_foreign_order_column_is_rejected(session: AsyncSession) -> None:
    repo = Repository(UserModel, session)
    with pytest.raises(InvalidDataError):
        await repo.paginate(order_by=[col(UserModel.full_name)])
    with pytest.raises(InvalidDataError):
        await repo.paginate(order_by=[col(SessionModel.name)])
