"""``Repository[ModelT]``: the operations every table shares.

Repositories never commit: the caller's unit of work (``Database.session()``) does.
Reads hide soft-deleted rows unless ``include_deleted=True``. Every write is validated
first (``InvalidDataError``, nothing sent), and driver errors come out as
``datalayer.errors`` with the original chained.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import ColumnElement, SQLColumnExpression
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm.interfaces import ORMOption
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from datalayer.errors import InvalidDataError, NotFoundError, StaleDataError, translate_errors
from datalayer.models.base import EntityModel, SoftDeleteModel
from datalayer.types import utc_now
from datalayer.validation import ModelValidator, as_uuid, validator_for

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Filter",
    "ModelT",
    "OrderBy",
    "Repository",
    "SoftDeleteRepository",
    "check_page",
]

ModelT = TypeVar("ModelT", bound=EntityModel)
SoftModelT = TypeVar("SoftModelT", bound=SoftDeleteModel)

#: A filter: what SQLModel column comparisons are typed as (``UserModel.is_active == True``).
Filter = ColumnElement[bool] | bool
#: An ORDER BY term: a column or an expression such as ``col(M.created_at).desc()``.
OrderBy = SQLColumnExpression[Any] | InstrumentedAttribute[Any]

#: Page size used when none is given.
DEFAULT_LIMIT = 100
#: Largest page size any list method accepts.
MAX_LIMIT = 10_000


def check_page(skip: int, limit: int) -> None:
    """Raise InvalidDataError unless ``0 <= skip`` and ``1 <= limit <= MAX_LIMIT``."""
    if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
        raise InvalidDataError.for_field("skip", skip, "must be an integer >= 0")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidDataError.for_field("limit", limit, f"must be an integer between 1 and {MAX_LIMIT}")
    if skip > 2**62:
        raise InvalidDataError.for_field("skip", skip, "is too large")


class Repository(Generic[ModelT]):
    """Create, read, update and delete rows of one table model.

    Subclasses bind their model once (``class SessionRepository(SoftDeleteRepository[SessionModel])``)
    and are built as ``SessionRepository(session)``; the generic one as
    ``Repository(SomeModel, session)``.
    """

    def __init__(self, model: type[ModelT], session: AsyncSession) -> None:
        self.model = model
        self.session = session
        self._validator: ModelValidator[ModelT] = validator_for(model)
        self._id = col(model.id)
        columns = sa.inspect(model).columns
        self._soft_deletable = issubclass(model, SoftDeleteModel)
        #: ``version`` column, when the table guards writes with one (sessions).
        self._version: sa.ColumnElement[int] | None = columns.get("version")

    # -- writes -------------------------------------------------------------------------

    async def create(self, **values: object) -> ModelT:
        """Validate ``values``, insert one row and return it as a persistent entity."""
        row = self._validator.row(values)
        created = await self._insert_rows([row])
        return created[0]

    async def add(self, entity: ModelT) -> ModelT:
        """Validate an entity the caller built, insert it and return it (now persistent)."""
        if not isinstance(entity, self.model):
            raise InvalidDataError.for_field("entity", entity, f"expected a {self.model.__name__}")
        values = {name: getattr(entity, name) for name in self._validator.fields}
        row = self._validator.row(values)
        for name, value in row.items():
            if value is not values[name]:
                setattr(entity, name, value)
        with translate_errors():
            self.session.add(entity)
            try:
                await self.session.flush()
            except BaseException:
                self.session.expunge(entity)
                raise
        return entity

    async def create_many(self, rows: Iterable[Mapping[str, object] | ModelT]) -> list[ModelT]:
        """Insert many rows (dicts or entities) in batched statements; all or nothing."""
        validated = [self._validator.row(self._as_mapping(row)) for row in rows]
        if not validated:
            return []
        with translate_errors():
            # A savepoint makes a failure in a later batch undo the earlier ones, even if
            # the caller goes on with the same unit of work.
            async with self.session.begin_nested():
                return await self._insert_rows(validated)

    async def _insert_rows(self, rows: list[dict[str, Any]]) -> list[ModelT]:
        statement = (
            sa.insert(self.model)
            .returning(self.model, sort_by_parameter_order=True)
            .execution_options(render_nulls=True)
        )
        with translate_errors():
            result = await self.session.exec(statement, params=rows)
            return cast(list[ModelT], list(result.scalars().all()))

    def _as_mapping(self, row: Mapping[str, object] | ModelT) -> Mapping[str, object]:
        if isinstance(row, self.model):
            return {name: getattr(row, name) for name in self._validator.fields}
        if isinstance(row, Mapping):
            return row
        raise InvalidDataError.for_field("rows", row, f"expected a dict or a {self.model.__name__}")

    async def update(self, id: UUID | str, /, **values: object) -> ModelT | None:
        """Validate and apply ``values`` to one row; return it, or None if missing or soft-deleted."""
        key = as_uuid(id)
        changes = self._validator.changes(values)
        return await self._update_returning(key, changes)

    async def update_if_version(
        self, id: UUID | str, expected_version: int, /, **values: object
    ) -> ModelT | None:
        """Like ``update``, but only if the row still has the ``version`` the caller read.

        For versioned tables (sessions). Returns None when the row is missing or soft-deleted;
        raises ``StaleDataError`` when another writer changed it since.
        """
        key = as_uuid(id)
        changes = self._validator.changes(values)
        return await self._update_returning(key, changes, expected_version=expected_version)

    async def _update_returning(
        self,
        key: UUID,
        changes: Mapping[str, Any],
        *guards: ColumnElement[bool],
        expected_version: int | None = None,
    ) -> ModelT | None:
        """Run ``UPDATE ... RETURNING`` on one visible row, refreshing a loaded instance."""
        values: dict[str, Any] = dict(changes)
        criteria = [self._id == key, *self._visible(False), *guards]
        if self._version is not None:
            values["version"] = self._version + 1
            if expected_version is not None:
                criteria.append(self._version == expected_version)
        elif expected_version is not None:
            raise InvalidDataError.for_field(
                "expected_version", expected_version, f"{self.model.__name__} has no version column"
            )
        if not values:
            return await self.get_by_id(key)
        statement = (
            sa.update(self.model)
            .where(*criteria)
            .values(values)
            .returning(self.model)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
        with translate_errors():
            result = await self.session.exec(statement)
            updated = cast(ModelT | None, result.scalars().one_or_none())
        if updated is None and expected_version is not None and await self.exists(key):
            raise StaleDataError(
                f"{self.model.__name__} {key} changed since version {expected_version} was read"
            )
        return updated

    async def delete(self, id: UUID | str) -> bool:
        """Hard-delete one row (children owned by it cascade); return True if it existed."""
        key = as_uuid(id)
        statement = sa.delete(self.model).where(self._id == key)
        with translate_errors():
            # ORM-enabled DELETE: an instance of this row loaded in the session is marked deleted.
            result = await self.session.exec(statement)
        return result.rowcount > 0

    # -- reads --------------------------------------------------------------------------

    async def get_by_id(
        self,
        id: UUID | str,
        *,
        include_deleted: bool = False,
        options: Sequence[ORMOption] = (),
    ) -> ModelT | None:
        """Return the row with this id, or None (also None when soft-deleted, unless asked)."""
        key = as_uuid(id)
        with translate_errors():
            entity = await self.session.get(self.model, key, options=options)
        if entity is None or (not include_deleted and _is_deleted(entity)):
            return None
        return entity

    async def get(
        self,
        id: UUID | str,
        *,
        include_deleted: bool = False,
        options: Sequence[ORMOption] = (),
    ) -> ModelT:
        """Return the row with this id; raise NotFoundError when it is missing or soft-deleted."""
        entity = await self.get_by_id(id, include_deleted=include_deleted, options=options)
        if entity is None:
            raise NotFoundError(self.model.__name__, id)
        return entity

    async def get_all(
        self,
        skip: int = 0,
        limit: int = DEFAULT_LIMIT,
        filters: Sequence[Filter] | None = None,
        order_by: Sequence[OrderBy] | None = None,
        *,
        include_deleted: bool = False,
        options: Sequence[ORMOption] = (),
    ) -> list[ModelT]:
        """Return one page of rows matching every filter; newest first unless ``order_by`` says."""
        check_page(skip, limit)
        statement = self._select(include_deleted).where(*(filters or ()))
        if order_by:
            statement = statement.order_by(*order_by, self._id)
        else:
            statement = statement.order_by(*self._newest_first())
        return await self._all(statement.offset(skip).limit(limit).options(*options))

    async def count(self, filters: Sequence[Filter] | None = None, *, include_deleted: bool = False) -> int:
        """Return the number of rows matching every filter."""
        statement = (
            select(sa.func.count())
            .select_from(self.model)
            .where(*self._visible(include_deleted), *(filters or ()))
        )
        with translate_errors():
            return (await self.session.exec(statement)).one()

    async def exists(self, id: UUID | str, *, include_deleted: bool = False) -> bool:
        """Return True if a (visible) row with this id exists."""
        key = as_uuid(id)
        statement = select(sa.exists().where(self._id == key, *self._visible(include_deleted)))
        with translate_errors():
            return bool((await self.session.exec(statement)).one())

    # -- helpers for subclasses ---------------------------------------------------------

    def _visible(self, include_deleted: bool) -> tuple[ColumnElement[bool], ...]:
        """Return the criteria hiding soft-deleted rows (none for append-only tables)."""
        if include_deleted or not self._soft_deletable:
            return ()
        return (self._deleted_at().is_(None),)

    def _deleted_at(self) -> sa.ColumnElement[datetime | None]:
        deleted_at: sa.ColumnElement[datetime | None] = sa.inspect(self.model).columns["deleted_at"]
        return deleted_at

    def _select(self, include_deleted: bool = False) -> SelectOfScalar[ModelT]:
        """Return ``SELECT model`` already restricted to visible rows."""
        return select(self.model).where(*self._visible(include_deleted))

    def _newest_first(self) -> tuple[ColumnElement[Any], ...]:
        return (col(self.model.created_at).desc(), self._id.desc())

    async def _all(self, statement: SelectOfScalar[ModelT]) -> list[ModelT]:
        """Run a SELECT of entities and return them as a list."""
        with translate_errors():
            return list((await self.session.exec(statement)).all())

    async def _first(self, statement: SelectOfScalar[ModelT]) -> ModelT | None:
        """Run a SELECT of entities and return the first, or None."""
        with translate_errors():
            return (await self.session.exec(statement.limit(1))).first()

    async def _execute_update(self, statement: sa.Update) -> int:
        """Run an UPDATE built by a subclass and return the number of rows it changed."""
        with translate_errors():
            result = await self.session.exec(statement.execution_options(synchronize_session=False))
        return result.rowcount


class SoftDeleteRepository(Repository[SoftModelT]):
    """A repository whose rows can be soft-deleted and restored."""

    async def soft_delete(self, id: UUID | str) -> bool:
        """Hide one row by setting ``deleted_at``; return False if missing or already deleted."""
        key = as_uuid(id)
        now = utc_now()
        return await self._set_deleted(key, now, self._deleted_at().is_(None)) > 0

    async def restore(self, id: UUID | str) -> bool:
        """Make a soft-deleted row visible again; return False if missing or not deleted."""
        key = as_uuid(id)
        return await self._set_deleted(key, None, self._deleted_at().is_not(None)) > 0

    async def _set_deleted(self, key: UUID, value: datetime | None, guard: ColumnElement[bool]) -> int:
        values: dict[str, Any] = {"deleted_at": value}
        if self._version is not None:
            values["version"] = self._version + 1
        statement = (
            sa.update(self.model)
            .where(self._id == key, guard)
            .values(values)
            .returning(self.model)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
        with translate_errors():
            result = await self.session.exec(statement)
            return len(result.scalars().all())


def _is_deleted(entity: EntityModel) -> bool:
    return getattr(entity, "deleted_at", None) is not None
