"""``Repository[ModelT]``: the operations every table shares.

``BaseRepository`` holds them; the generic ``Repository(SomeModel, session)`` adds the
keyword-argument writes (``create``, ``update``, ``upsert``) checked at run time only, and
each table's repository gets them typed per model (``datalayer.repositories.writes``).
Repositories never commit: the caller's unit of work (``Database.session()``) does.
Reads hide soft-deleted rows unless ``include_deleted=True``. Every write is validated
first (``InvalidDataError``, nothing sent), and driver errors come out as
``datalayer.errors`` with the original chained.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncGenerator, Generator, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeAlias, TypeVar, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import ColumnElement, SQLColumnExpression
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.dml import ReturningUpdate
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from datalayer.errors import InvalidDataError, NotFoundError, StaleDataError, translate_errors
from datalayer.models.base import EntityModel, SoftDeleteModel
from datalayer.purge import DEFAULT_BATCH_SIZE, delete_batch
from datalayer.repositories._orm_state import EntityBuilder, attach_inserted
from datalayer.repositories.keyset import SortKey, after, decode_cursor, encode_cursor, order_terms, sort_keys
from datalayer.types import utc_now
from datalayer.validation import IMMUTABLE_FIELDS, ModelValidator, as_uuid, validator_for

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "BaseRepository",
    "BaseSoftDeleteRepository",
    "Filter",
    "ModelT",
    "OrderBy",
    "Page",
    "Repository",
    "SoftDeleteRepository",
    "check_filters",
    "check_page",
]

ModelT = TypeVar("ModelT", bound=EntityModel)
SoftModelT = TypeVar("SoftModelT", bound=SoftDeleteModel)

#: A filter: a SQL boolean expression such as ``col(UserModel.is_active).is_(True)`` or
#: ``col(UserModel.name) == "x"``. Not a Python ``bool``: ``chat.name == "x"`` (an instance's
#: attribute, not the class's column) is refused by type checkers and at run time.
Filter: TypeAlias = ColumnElement[bool]
#: An ORDER BY term: a column or an expression such as ``col(M.created_at).desc()``.
OrderBy: TypeAlias = SQLColumnExpression[object]

#: Page size used when none is given.
DEFAULT_LIMIT = 100
#: Largest page size any list method accepts.
MAX_LIMIT = 10_000
#: Rows fetched per round trip by ``stream``.
STREAM_BATCH = 1_000


@dataclass(frozen=True, slots=True)
class Page(Generic[ModelT]):
    """One page of a keyset pagination: the rows, and the cursor of the next page (None at the end)."""

    items: list[ModelT]
    next_cursor: str | None


def check_page(skip: int, limit: int) -> None:
    """Raise InvalidDataError unless ``0 <= skip`` and ``1 <= limit <= MAX_LIMIT``."""
    if not _is_int(skip) or skip < 0:
        raise InvalidDataError.for_field("skip", skip, "must be an integer >= 0")
    if not _is_int(limit) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidDataError.for_field("limit", limit, f"must be an integer between 1 and {MAX_LIMIT}")
    if skip > 2**62:
        raise InvalidDataError.for_field("skip", skip, "is too large")


def check_filters(filters: Sequence[Filter] | None) -> tuple[Filter, ...]:
    """Return ``filters`` as a tuple; InvalidDataError (field ``filters``) unless each is a SQL expression.

    A Python ``bool`` comes from comparing an instance's attribute instead of the class's
    column (``chat.name == "x"``) and would silently select no row, or every row.
    """
    if filters is None:
        return ()
    if _is_expression(filters) or not _is_sequence(filters):
        raise InvalidDataError.for_field("filters", filters, "expected a list of SQL boolean expressions")
    for item in filters:
        if not _is_expression(item):
            raise InvalidDataError.for_field(
                "filters",
                item,
                "expected a SQL boolean expression such as col(Model.field) == value, not a Python value",
            )
    return tuple(filters)


# The checks below take ``object``: callers' values may not be what the annotations say.
def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_expression(value: object) -> bool:
    return isinstance(value, ColumnElement)


def _is_sequence(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


class BaseRepository(Generic[ModelT]):
    """Read, insert, update and delete rows of one table model: what every repository shares.

    Subclasses bind their model once as a class attribute (``model_type = SessionModel``)
    and are built as ``SessionRepository(session)``. The generic :class:`Repository` takes
    the model as an argument: ``Repository(SomeModel, session)``.
    """

    #: The table model this repository reads and writes.
    model_type: type[ModelT]

    def __init__(self, session: AsyncSession) -> None:
        model = self.model_type
        self.model = model
        self.session = session
        self._validator: ModelValidator[ModelT] = validator_for(model)
        # Looked up once per model, not per repository: repositories are built per unit of work.
        info = _model_info(model)
        self._id, self._version = info.id, info.version
        self._live, self._newest = info.live, info.newest_first
        self._builder: EntityBuilder[ModelT] = _builder_for(model)

    # -- writes -------------------------------------------------------------------------

    async def _create(self, values: Mapping[str, object]) -> ModelT:
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
        with _collector_paused():
            validated = [self._validator.row(self._as_mapping(row)) for row in rows]
        if not validated:
            return []
        with translate_errors():
            # A savepoint makes a failure in a later batch undo the earlier ones, even if
            # the caller goes on with the same unit of work.
            async with self.session.begin_nested():
                await self._insert(validated)
        # Attached after the savepoint is released: the outer transaction records them
        # (a rollback still expunges them) without the savepoint copying 10,000 states.
        return self._attach(validated)

    async def insert_many(self, rows: Iterable[Mapping[str, object] | ModelT]) -> list[UUID]:
        """Insert many rows like ``create_many``, all or nothing; return only their ids, in order.

        No entity is built or added to the session: the fastest way to write many rows
        when the caller does not need them back.
        """
        with _collector_paused():
            validated = [self._validator.row(self._as_mapping(row)) for row in rows]
        if not validated:
            return []
        with translate_errors():
            async with self.session.begin_nested():
                await self.session.exec(self._table_insert(), params=validated)
        return [row["id"] for row in validated]

    async def _insert_rows(self, rows: list[dict[str, Any]]) -> list[ModelT]:
        """INSERT the validated rows and return them as persistent entities, built without a read-back.

        Ids are client-side and no column has a server default, so each validated row is
        the stored row; the entities are built from it (``_orm_state``).
        """
        await self._insert(rows)
        return self._attach(rows)

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        """Send the plain Core INSERT of the validated rows (values normalized as stored)."""
        builder = self._builder
        with _collector_paused():
            for row in rows:
                builder.stored(row)
        with translate_errors():
            # One row as a dict: a list would take the (slower) executemany path.
            await self.session.exec(self._table_insert(), params=rows[0] if len(rows) == 1 else rows)

    def _attach(self, rows: list[dict[str, Any]]) -> list[ModelT]:
        """Return the inserted rows as entities, persistent in the session."""
        with _collector_paused():
            entities = [self._builder.build(row) for row in rows]
            attach_inserted(self.session.sync_session, entities)
        return entities

    def _table_insert(self) -> sa.Insert:
        """Return the model's plain Core INSERT (built once per model, its cache key too)."""
        statement = _INSERT.get(self.model)
        if statement is None:
            statement = _INSERT.setdefault(self.model, sa.insert(_table(self.model)))
        return statement

    def _as_mapping(self, row: Mapping[str, object] | ModelT) -> Mapping[str, object]:
        if isinstance(row, self.model):
            return {name: getattr(row, name) for name in self._validator.fields}
        if isinstance(row, Mapping):
            return row
        raise InvalidDataError.for_field("rows", row, f"expected a dict or a {self.model.__name__}")

    async def _update(self, id: UUID | str, values: Mapping[str, object]) -> ModelT | None:
        """Validate and apply ``values`` to one row; return it, or None if missing or soft-deleted."""
        key = as_uuid(id)
        changes = self._validator.changes(values)
        return await self._update_returning(key, changes)

    async def _update_if_version(
        self, id: UUID | str, expected_version: int, values: Mapping[str, object]
    ) -> ModelT | None:
        """Like ``_update``, but only if the row still has the ``version`` the caller read.

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
        """Run ``UPDATE ... RETURNING`` on one visible row; return it (a loaded instance is refreshed)."""
        if self._version is None and expected_version is not None:
            raise InvalidDataError.for_field(
                "expected_version", expected_version, f"{self.model.__name__} has no version column"
            )
        if not changes and self._version is None:
            return await self.get_by_id(key)
        statement, params = self._update_statement(key, changes, guards, expected_version)
        with translate_errors():
            result = await self.session.exec(statement, params=params)
            returned = result.first()
        if returned is None:
            if expected_version is not None and await self.exists(key):
                raise StaleDataError(
                    f"{self.model.__name__} {key} changed since version {expected_version} was read"
                )
            return None
        row = dict(zip(self._builder.names, returned, strict=True))
        loaded = self.session.sync_session.identity_map.get(identity_key(self.model, key))
        if loaded is not None:
            self._builder.refresh(loaded, row)
            return loaded
        entity = self._builder.build(row)
        attach_inserted(self.session.sync_session, [entity])
        return entity

    def _update_statement(
        self,
        key: UUID,
        changes: Mapping[str, Any],
        guards: Sequence[ColumnElement[bool]],
        expected_version: int | None,
    ) -> tuple[ReturningUpdate[Any], dict[str, Any]]:
        """Return the Core ``UPDATE ... RETURNING *`` of one visible row, and its parameters.

        With plain values (not SQL expressions) and no extra guards, the statement is built
        once per (model, set of columns, versioned) with bound parameters and reused.
        """
        table = _table(self.model)
        params: dict[str, Any] = {_KEY: key}
        if expected_version is not None:
            params[_EXPECTED] = expected_version
        plain = not guards and not any(isinstance(v, sa.ClauseElement) for v in changes.values())
        cache_key = (self.model, frozenset(changes), expected_version is not None)
        if plain:
            cached = _UPDATE.get(cache_key)
            if cached is not None:
                params.update({_VALUE + name: value for name, value in changes.items()})
                return cached, params
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if plain:
                values[name] = sa.bindparam(_VALUE + name, type_=table.c[name].type)
                params[_VALUE + name] = value
            else:
                values[name] = value
        criteria: list[ColumnElement[bool]] = [table.c.id == sa.bindparam(_KEY), *self._visible(False)]
        if self._version is not None:
            values["version"] = table.c.version + 1
            if expected_version is not None:
                criteria.append(table.c.version == sa.bindparam(_EXPECTED))
        statement = sa.update(table).where(*criteria, *guards).values(values).returning(*table.c)
        if plain:
            statement = _UPDATE.setdefault(cache_key, statement)
        return statement, params

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
            if options or identity_key(self.model, key) in self.session.sync_session.identity_map:
                # With loader options, reload even an instance already in the session: the
                # identity map would otherwise return it without the requested relationships.
                entity = await self.session.get(
                    self.model, key, options=options, populate_existing=bool(options)
                )
            else:
                # What session.get sends, but built once: no cache key to compute per call.
                entity = (await self.session.exec(self._get_statement(), params={_KEY: key})).first()
        if entity is None or (not include_deleted and _is_deleted(entity)):
            return None
        return entity

    def _get_statement(self) -> SelectOfScalar[ModelT]:
        """Return ``SELECT model WHERE id = :key`` (built once per model)."""
        statement = _GET.get(self.model)
        if statement is None:
            statement = _GET.setdefault(self.model, select(self.model).where(self._id == sa.bindparam(_KEY)))
        return cast(SelectOfScalar[ModelT], statement)

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
        statement = select(self.model).where(*self._visible(include_deleted), *check_filters(filters))
        ordering = (*order_by, self._id) if order_by else self._newest
        statement = statement.order_by(*ordering)
        if skip:
            statement = statement.offset(skip)
        if options:
            statement = statement.options(*options)
        return await self._all(statement.limit(limit))

    async def count(self, filters: Sequence[Filter] | None = None, *, include_deleted: bool = False) -> int:
        """Return the number of rows matching every filter."""
        statement = (
            select(sa.func.count())
            .select_from(self.model)
            .where(*self._visible(include_deleted), *check_filters(filters))
        )
        with translate_errors():
            return (await self.session.exec(statement)).one()

    async def exists(self, id: UUID | str, *, include_deleted: bool = False) -> bool:
        """Return True if a (visible) row with this id exists."""
        key = as_uuid(id)
        statement = _EXISTS.get((self.model, include_deleted))
        if statement is None:
            # Built once per model: reusing the statement object also reuses its cache key.
            criteria = (self._id == sa.bindparam(_KEY), *self._visible(include_deleted))
            statement = _EXISTS.setdefault(
                (self.model, include_deleted), select(sa.exists().where(*criteria))
            )
        return await self._exists(statement, {_KEY: key})

    # -- keyset pagination, streaming ---------------------------------------------------

    async def paginate(
        self,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        filters: Sequence[Filter] | None = None,
        order_by: Sequence[OrderBy] | None = None,
        *,
        include_deleted: bool = False,
        options: Sequence[ORMOption] = (),
    ) -> Page[ModelT]:
        """Return the page after ``cursor`` (the first page without one) and the next page's cursor.

        Same rows and order as ``get_all`` (newest first, or ``order_by`` then id), but each
        page costs the same however deep it is: the cursor holds the sort values of the last
        row and the next page starts after them (``WHERE (a, id) < (:a, :id)``). Ordering
        terms must be non-nullable columns of the model, each ascending or ``.desc()``.
        """
        check_page(0, limit)
        keys = sort_keys(self.model, order_by)
        statement = self._select(include_deleted).where(*check_filters(filters))
        if cursor is not None:
            statement = statement.where(after(keys, self._decode_cursor(keys, cursor)))
        statement = statement.order_by(*order_terms(keys)).limit(limit + 1).options(*options)
        rows = await self._all(statement)
        if len(rows) <= limit:
            return Page(rows, None)
        items = rows[:limit]
        return Page(items, encode_cursor(keys, items[-1]))

    async def stream(
        self,
        filters: Sequence[Filter] | None = None,
        order_by: Sequence[OrderBy] | None = None,
        *,
        include_deleted: bool = False,
        batch_size: int = STREAM_BATCH,
    ) -> AsyncGenerator[ModelT, None]:
        """Return an async iterator over every matching row, in ``paginate`` order, in flat memory.

        PostgreSQL reads through a server-side cursor ``batch_size`` rows at a time; SQLite
        runs one keyset query per batch. Rows already yielded are not kept by the iterator.
        """
        check_page(0, batch_size)
        keys = sort_keys(self.model, order_by)
        where = check_filters(filters)
        statement = self._select(include_deleted).where(*where).order_by(*order_terms(keys))
        if self._dialect_name() == "postgresql":
            with translate_errors():
                result = await self.session.stream(statement.execution_options(yield_per=batch_size))
            try:
                with translate_errors():
                    async for entity in result.scalars():
                        yield entity
            finally:
                await result.close()
            return
        last: ModelT | None = None
        while True:
            batch_statement = statement
            if last is not None:
                batch_statement = statement.where(after(keys, [getattr(last, k.name) for k in keys]))
            batch = await self._all(batch_statement.limit(batch_size))
            for entity in batch:
                yield entity
            if len(batch) < batch_size:
                return
            last = batch[-1]

    def _decode_cursor(self, keys: Sequence[SortKey], cursor: str) -> list[object]:
        """Return the sort values a cursor holds; InvalidDataError if it is not one of ours."""
        values = decode_cursor(keys, cursor)
        try:
            checked = [self._validator.field_value(k.name, v) for k, v in zip(keys, values, strict=True)]
        except InvalidDataError as exc:
            raise InvalidDataError.for_field("cursor", cursor, "invalid pagination cursor") from exc
        if checked != values:
            # Coerced (e.g. an int read as a timestamp): not a value this ordering produced.
            raise InvalidDataError.for_field("cursor", cursor, "invalid pagination cursor")
        return checked

    # -- upsert -------------------------------------------------------------------------

    async def _upsert(self, on: tuple[str, ...], values: Mapping[str, object]) -> ModelT:
        """Insert one row, or update the row with the same ``on`` values; return it."""
        created = await self.upsert_many([values], on=on)
        return created[0]

    async def upsert_many(self, rows: Iterable[Mapping[str, object]], *, on: tuple[str, ...]) -> list[ModelT]:
        """Upsert many rows with ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``; return them in order.

        Rows giving the same set of columns go in one batched statement; all or nothing.
        The ``on`` values must be distinct across ``rows``.
        """
        conflict = self._conflict_target(on)
        given: list[Mapping[str, object]] = []
        validated: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        for row in rows:
            mapping = self._as_mapping(row)
            missing = [name for name in on if name not in mapping]
            if missing:
                raise InvalidDataError.for_field(
                    missing[0], None, "upsert needs a value for each `on` column"
                )
            full = self._validator.row(mapping)
            key = tuple(full[name] for name in on)
            if key in seen:
                raise InvalidDataError.for_field(", ".join(on), key, "duplicate key among the upserted rows")
            seen.add(key)
            given.append(mapping)
            validated.append(full)
        if not validated:
            return []
        groups: dict[frozenset[str], list[dict[str, Any]]] = {}
        for mapping, full in zip(given, validated, strict=True):
            groups.setdefault(frozenset(mapping), []).append(full)
        by_key: dict[tuple[Any, ...], ModelT] = {}
        with translate_errors():
            async with self.session.begin_nested():
                for names, group in groups.items():
                    statement = self._upsert_statement(on, conflict, names)
                    result = await self.session.exec(statement, params=group)
                    for entity in cast(list[ModelT], result.scalars().all()):
                        by_key[tuple(getattr(entity, name) for name in on)] = entity
        return [by_key[tuple(full[name] for name in on)] for full in validated]

    def _conflict_target(self, on: tuple[str, ...]) -> ColumnElement[bool] | None:
        """Check ``on`` against the table's unique keys; return the WHERE of a partial index."""
        if not _is_sequence(on) or not on:
            raise InvalidDataError.for_field("on", on, "give a non-empty tuple of column names")
        table = cast(sa.Table, sa.inspect(self.model).local_table)
        wanted = set(on)
        for constraint in table.constraints:
            if isinstance(constraint, sa.UniqueConstraint | sa.PrimaryKeyConstraint) and (
                {c.name for c in constraint.columns} == wanted
            ):
                return None
        for index in table.indexes:
            if not index.unique or any(not isinstance(e, sa.Column) for e in index.expressions):
                continue
            if {c.name for c in index.columns} == wanted:
                where = index.dialect_options["postgresql"].get("where")
                return cast(ColumnElement[bool] | None, where)
        raise InvalidDataError.for_field(
            "on", tuple(on), f"no unique constraint or plain unique index of {table.name} has these columns"
        )

    def _upsert_statement(
        self, on: Sequence[str], where: ColumnElement[bool] | None, given: frozenset[str]
    ) -> sa.Insert:
        """Return the dialect's INSERT ... ON CONFLICT (on) DO UPDATE ... RETURNING statement."""
        dialect = self._dialect_name()
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(self.model)
        excluded = statement.excluded
        columns = sa.inspect(self.model).columns
        updates: dict[str, Any] = {
            name: excluded[name] for name in sorted(given) if name not in on and name not in IMMUTABLE_FIELDS
        }
        if "updated_at" in columns and "updated_at" not in updates:
            updates["updated_at"] = excluded["updated_at"]
        if self._version is not None and "version" not in given:
            updates["version"] = columns["version"] + 1
        if not updates:
            # DO NOTHING would return no row for a conflict; a no-op update returns it.
            updates[on[0]] = excluded[on[0]]
        return (
            statement.on_conflict_do_update(index_elements=list(on), index_where=where, set_=updates)
            .returning(self.model)
            .execution_options(render_nulls=True, populate_existing=True)
        )

    def _dialect_name(self) -> str:
        return self.session.get_bind().dialect.name

    # -- helpers for subclasses ---------------------------------------------------------

    def _visible(self, include_deleted: bool) -> tuple[ColumnElement[bool], ...]:
        """Return the criteria hiding soft-deleted rows (none for append-only tables)."""
        return () if include_deleted else self._live

    def _deleted_at(self) -> sa.ColumnElement[datetime | None]:
        deleted_at: sa.ColumnElement[datetime | None] = sa.inspect(self.model).columns["deleted_at"]
        return deleted_at

    def _select(self, include_deleted: bool = False) -> SelectOfScalar[ModelT]:
        """Return ``SELECT model`` already restricted to visible rows."""
        return select(self.model).where(*self._visible(include_deleted))

    def _newest_first(self) -> tuple[ColumnElement[Any], ...]:
        """Return the default ORDER BY: newest ``created_at`` first, then id."""
        return self._newest

    async def _page(
        self,
        *criteria: ColumnElement[bool],
        order_by: Sequence[OrderBy],
        skip: int = 0,
        limit: int = DEFAULT_LIMIT,
    ) -> list[ModelT]:
        """Return one page of the visible rows matching every criterion, in ``order_by`` order."""
        check_page(skip, limit)
        statement = self._select().where(*criteria).order_by(*order_by)
        if skip:
            statement = statement.offset(skip)
        return await self._all(statement.limit(limit))

    async def _any(self, *criteria: ColumnElement[bool]) -> bool:
        """Return True if a visible row matches every criterion (``exists`` for any condition)."""
        return await self._exists(select(sa.exists().where(*criteria, *self._visible(False))))

    async def _exists(
        self, statement: SelectOfScalar[bool], params: Mapping[str, object] | None = None
    ) -> bool:
        """Run a ``SELECT EXISTS (...)`` and return its answer."""
        with translate_errors():
            return bool((await self.session.exec(statement, params=params)).one())

    async def _all(self, statement: SelectOfScalar[ModelT]) -> list[ModelT]:
        """Run a SELECT of entities and return them as a list."""
        with translate_errors():
            return list((await self.session.exec(statement)).all())

    async def _first(self, statement: SelectOfScalar[ModelT]) -> ModelT | None:
        """Run a SELECT of entities and return the first, or None."""
        with translate_errors():
            return (await self.session.exec(statement.limit(1))).first()


class BaseSoftDeleteRepository(BaseRepository[SoftModelT]):
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

    async def purge_deleted(
        self, older_than: timedelta | datetime, *, limit: int = DEFAULT_BATCH_SIZE, after: UUID | None = None
    ) -> list[UUID]:
        """Hard-delete one batch of rows soft-deleted before the cutoff; return their ids, ascending.

        Rows referencing them through ``ON DELETE CASCADE`` go too. ``older_than`` is an age
        (``timedelta(days=30)``) or an aware cutoff datetime. At most
        ``limit`` rows, with ids above ``after`` (pass the last id returned to continue), in the
        caller's unit of work. To purge a whole table in short transactions, one per batch, use
        ``datalayer.purge.purge_deleted(db, Model, older_than)`` or ``datalayer purge``.
        """
        return await delete_batch(self.session, self.model, older_than, limit=limit, after=after)

    async def _set_deleted(self, key: UUID, value: datetime | None, guard: ColumnElement[bool]) -> int:
        loaded = self.session.sync_session.identity_map.get(identity_key(self.model, key))
        statement = self._set_deleted_statement(value is None, loaded is not None)
        now = value if value is not None else utc_now()
        with translate_errors():
            result = await self.session.exec(statement, params={_KEY: key, _VALUE: value, _NOW: now})
        if loaded is None:
            return result.rowcount
        # Only the version is unknown here: RETURNING it refreshes the loaded instance.
        rows = result.all()
        if rows:
            columns = sa.inspect(self.model).columns
            refreshed = {"deleted_at": value, "updated_at": now, "version": rows[0][0]}
            for name, new_value in refreshed.items():
                if name in columns:
                    set_committed_value(loaded, name, new_value)
        return len(rows)

    def _set_deleted_statement(self, restore: bool, returning: bool) -> sa.Update:
        """Return the soft delete (or restore) UPDATE, built once per model and variant."""
        cache_key = (self.model, restore, returning)
        statement = _SET_DELETED.get(cache_key)
        if statement is not None:
            return statement
        table = _table(self.model)
        guard = table.c.deleted_at.is_not(None) if restore else table.c.deleted_at.is_(None)
        values: dict[str, Any] = {"deleted_at": sa.bindparam(_VALUE, type_=table.c.deleted_at.type)}
        if "updated_at" in table.c:
            values["updated_at"] = sa.bindparam(_NOW, type_=table.c.updated_at.type)
        if "version" in table.c:
            values["version"] = table.c.version + 1
        statement = sa.update(table).where(table.c.id == sa.bindparam(_KEY), guard).values(values)
        if returning:
            statement = statement.returning(table.c.version if "version" in table.c else table.c.id)
        return _SET_DELETED.setdefault(cache_key, statement)


_KEY = "datalayer_key"
_EXPECTED = "datalayer_expected_version"
_VALUE = "datalayer_value_"
_NOW = "datalayer_now"
_EXISTS: dict[tuple[type[EntityModel], bool], SelectOfScalar[bool]] = {}
_INSERT: dict[type[EntityModel], sa.Insert] = {}
_MODEL_INFO: dict[type[EntityModel], _ModelInfo] = {}
_BUILDERS: dict[type[EntityModel], EntityBuilder[Any]] = {}
_GET: dict[type[EntityModel], SelectOfScalar[Any]] = {}
_UPDATE: dict[tuple[type[EntityModel], frozenset[str], bool], ReturningUpdate[Any]] = {}
_SET_DELETED: dict[tuple[type[EntityModel], bool, bool], sa.Update] = {}


def _table(model: type[EntityModel]) -> sa.Table:
    """Return the model's Table (Core statements on it skip the ORM's row loading)."""
    return cast(sa.Table, sa.inspect(model).local_table)


@contextmanager
def _collector_paused() -> Generator[None]:
    """Pause the cyclic garbage collector while thousands of fresh objects are built.

    Building 10,000 entities otherwise triggers many full collections that find nothing
    (about a fifth of a bulk insert's time). Nothing is awaited inside, so no other task runs.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Repository(BaseRepository[ModelT]):
    """The generic repository of any table model: ``Repository(SomeModel, session)``.

    Its keyword-argument writes take ``**values: object``: checked at run time (unknown
    field, wrong type, bad enum value: ``InvalidDataError``), not by type checkers. Each
    table's own repository (``UserRepository(session)``, ...) has them typed per model.
    """

    def __init__(self, model: type[ModelT], session: AsyncSession) -> None:
        self.model_type = model
        super().__init__(session)

    async def create(self, **values: object) -> ModelT:
        """Validate ``values``, insert one row and return it as a persistent entity."""
        return await self._create(values)

    async def update(self, id: UUID | str, /, **values: object) -> ModelT | None:
        """Validate and apply ``values`` to one row; return it, or None if missing or soft-deleted."""
        return await self._update(id, values)

    async def update_if_version(
        self, id: UUID | str, expected_version: int, /, **values: object
    ) -> ModelT | None:
        """Like ``update``, but only if the row still has the ``version`` the caller read.

        For versioned tables (sessions). Returns None when the row is missing or soft-deleted;
        raises ``StaleDataError`` when another writer changed it since.
        """
        return await self._update_if_version(id, expected_version, values)

    async def upsert(self, *, on: tuple[str, ...], **values: object) -> ModelT:
        """Insert one row, or update the row with the same ``on`` values; return it.

        ``on`` names the columns of a unique constraint or unique index (a partial one too;
        not an expression index such as ``lower(email)``). On conflict every given column
        except ``on``, ``id`` and ``created_at`` is updated (and ``updated_at``/``version``).
        """
        return await self._upsert(on, values)


class SoftDeleteRepository(Repository[SoftModelT], BaseSoftDeleteRepository[SoftModelT]):
    """The generic repository of a soft-deletable model: ``SoftDeleteRepository(SomeModel, session)``."""


@dataclass(frozen=True, slots=True)
class _ModelInfo:
    """What the repository needs to know about a model, and the expressions it reuses."""

    id: ColumnElement[UUID]
    version: ColumnElement[int] | None
    live: tuple[ColumnElement[bool], ...]
    newest_first: tuple[ColumnElement[Any], ...]


def _model_info(model: type[EntityModel]) -> _ModelInfo:
    """Return a model's id and version columns, and its "live rows" and default-order expressions."""
    info = _MODEL_INFO.get(model)
    if info is None:
        info = _MODEL_INFO.setdefault(model, _build_model_info(model))
    return info


def _build_model_info(model: type[EntityModel]) -> _ModelInfo:
    columns = sa.inspect(model).columns
    soft_deletable = issubclass(model, SoftDeleteModel)
    live = (columns["deleted_at"].is_(None),) if soft_deletable else ()
    id_column: ColumnElement[UUID] = columns["id"]
    newest_first = (col(model.created_at).desc(), id_column.desc())
    return _ModelInfo(id_column, columns.get("version"), live, newest_first)


def _builder_for(model: type[ModelT]) -> EntityBuilder[ModelT]:
    """Return the (cached) entity builder of a model."""
    builder = _BUILDERS.get(model)
    if builder is None:
        builder = _BUILDERS.setdefault(model, EntityBuilder(model))
    return builder


def _is_deleted(entity: EntityModel) -> bool:
    return getattr(entity, "deleted_at", None) is not None
