"""The exceptions of datalayer, and the translation of driver errors into them.

Every repository method raises only these; the driver or SQLAlchemy exception that
caused one is chained as ``__cause__``. After any of them, roll the unit of work back
(``Database.session()`` does it for you) and start a new one.

Driver errors are classified by code, never by message text, the same way on both backends:

=============================  ==========================================  ===============================
error                          PostgreSQL SQLSTATE                         SQLite (extended) result code
=============================  ==========================================  ===============================
``ConflictError``              23505 unique; 40001, 40P01 (retry the unit)  CONSTRAINT_UNIQUE, _PRIMARYKEY
``ConstraintViolationError``   other 23xxx (foreign key, check, not null)  other CONSTRAINT_*
``InvalidDataError``           22xxx data exception, 54xxx limits          TOOBIG, MISMATCH, RANGE
``ReadOnlyError``              25006 read-only transaction                 READONLY (``query_only``)
``DatabaseUnavailableError``   08xxx connection, 28xxx credentials,        BUSY, LOCKED, CANTOPEN,
                               3D000 no such database, 53xxx resources,    IOERR, NOTADB, FULL, AUTH
                               57P0x shutdown, 57014 statement_timeout,
                               55P03 lock timeout; a lost connection or
                               a client-side timeout (``command_timeout``)
``DataLayerError`` (bare)      anything else, e.g. 42xxx (a misspelled     anything else, e.g. ERROR
                               column, another table's column): a bug      ("no such column"): a bug
=============================  ==========================================  ===============================

``UsageError`` is raised before anything is sent: a unit of work used after it ended, a
``Database`` used from a second event loop, a nested unit on an in-memory SQLite database.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Generator
from contextlib import contextmanager
from typing import NoReturn

from asyncpg import exceptions as pg_exc  # type: ignore[import-untyped]  # asyncpg ships no type information
from sqlalchemy import exc as sa_exc

__all__ = [
    "ConflictError",
    "ConstraintViolationError",
    "DataLayerError",
    "DatabaseUnavailableError",
    "InvalidDataError",
    "NotFoundError",
    "ReadOnlyError",
    "StaleDataError",
    "UsageError",
    "raise_translated",
    "translate_errors",
]


class DataLayerError(Exception):
    """Base class of every error raised by datalayer."""


class NotFoundError(DataLayerError):
    """The requested row does not exist (or is soft-deleted)."""

    def __init__(self, model: str, id: object) -> None:
        super().__init__(f"{model} with id={id!s} not found")
        self.model = model
        self.id = id


class ConflictError(DataLayerError):
    """A unique constraint was violated, e.g. a second user with the same email."""


class StaleDataError(ConflictError):
    """An optimistic-concurrency guard failed: the row changed since it was read."""


class ConstraintViolationError(DataLayerError):
    """A foreign key, check or not-null constraint rejected the write."""


class InvalidDataError(DataLayerError, ValueError):
    """Input failed validation before reaching the database."""

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value

    @classmethod
    def for_field(cls, field: str, value: object, problem: str) -> InvalidDataError:
        """Return an error whose message names the field and the offending value."""
        shown = _safe_repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return cls(f"{field}: {problem} (got {shown})", field=field, value=value)


def _safe_repr(value: object) -> str:
    """Return ``repr(value)``, or a description when it cannot be printed (huge ints, deep nesting)."""
    if isinstance(value, int) and value.bit_length() > 4000:
        return f"<{value.bit_length()}-bit integer>"
    try:
        return repr(value)
    except (ValueError, RecursionError):
        return f"<unprintable {type(value).__name__}>"


class DatabaseUnavailableError(DataLayerError):
    """The database cannot be reached, the connection was lost, it is busy, or a timeout hit.

    The unit of work was rolled back (unless the connection dropped during COMMIT, when
    the outcome is unknown); retrying it later in a new unit of work is the usual answer.
    """


class ReadOnlyError(DataLayerError):
    """A write was attempted in a read-only unit of work or on a read replica."""


class UsageError(DataLayerError, RuntimeError):
    """The package was used in a way that cannot work; nothing was sent to the database.

    For example a unit of work's session used after the ``async with`` block ended, or one
    ``Database`` used from two event loops (threads) at once. A bug in the caller: retrying
    does not help.
    """


# SQLSTATE codes (PostgreSQL) that we classify; see Appendix A of its manual.
_PG_UNIQUE = "23505"
_PG_CONFLICT_CLASSES = ("40001", "40P01")  # serialization failure, deadlock
_PG_CONSTRAINT_PREFIX = "23"
_PG_DATA_PREFIX = "22"
# connection, credentials (invalid authorization), shutdown, resources
_PG_UNAVAILABLE_PREFIXES = ("08", "28", "57P", "53")
_PG_NO_DATABASE = "3D000"  # invalid_catalog_name: the database in the URL does not exist
_PG_READ_ONLY = "25006"  # read_only_sql_transaction (also what a hot standby answers)
_PG_CANCELED = "57014"  # query_canceled: statement_timeout or a cancel request
_PG_LOCK_TIMEOUT = "55P03"  # lock_not_available: lock_timeout or NOWAIT
_PG_LIMIT_PREFIX = "54"  # program_limit_exceeded, e.g. a value too large to index

# SQLite extended result codes (sqlite3.<name> since Python 3.11).
_SQLITE_UNIQUE = {sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY}
_SQLITE_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_SQLITE_UNAVAILABLE = {
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_NOTADB,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_AUTH,
}


def _sqlstate(error: BaseException | None) -> str | None:
    """Return the PostgreSQL SQLSTATE carried by a driver error or its causes."""
    seen = 0
    while error is not None and seen < 5:
        for attribute in ("sqlstate", "pgcode"):
            code = getattr(error, attribute, None)
            if isinstance(code, str):
                return code
        error = error.__cause__
        seen += 1
    return None


def _no_server_fits(error: BaseException | None) -> bool:
    """Return True for asyncpg's refusal of every host of a multi-host URL (``target_session_attrs``)."""
    # Imported here: only PostgreSQL errors get this far. asyncpg ships no type information.
    from asyncpg.exceptions import TargetServerAttributeNotMatched  # type: ignore[import-untyped]

    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, TargetServerAttributeNotMatched):
            return True
        error = error.__cause__
        seen += 1
    return False


def _sqlite_code(error: BaseException | None) -> int | None:
    """Return the SQLite extended error code carried by a driver error."""
    if isinstance(error, sqlite3.Error):
        # Errors raised by sqlite3 carry it; one made by a driver adapter (aiosqlite's
        # "no active connection" as OperationalError) does not.
        code: int | None = getattr(error, "sqlite_errorcode", None)
        return code
    return None


#: The same, for the modules that report driver errors (observability, tracing).
sqlstate = _sqlstate
sqlite_code = _sqlite_code


def classify(error: BaseException) -> DataLayerError | None:
    """Return the datalayer error for a SQLAlchemy/driver exception, or None if unknown."""
    if isinstance(error, DataLayerError):
        return error
    message = _first_line(error)
    if isinstance(error, sa_exc.DBAPIError):
        orig = error.orig
        state = _sqlstate(orig)
        code = _sqlite_code(orig)
        if error.connection_invalidated:
            return DatabaseUnavailableError(f"connection lost: {message}")
        if isinstance(error, sa_exc.InternalError) and _no_server_fits(orig):
            return DatabaseUnavailableError(f"no server of the kind target_session_attrs asks for: {message}")
        if state is not None:
            if state == _PG_UNIQUE:
                return ConflictError(message)
            if state == _PG_READ_ONLY:
                return ReadOnlyError(f"read-only transaction: {message}")
            if state == _PG_CANCELED:
                return DatabaseUnavailableError(f"statement cancelled (statement_timeout?): {message}")
            if state == _PG_LOCK_TIMEOUT:
                return DatabaseUnavailableError(f"lock not available: {message}")
            if state.startswith(_PG_LIMIT_PREFIX):
                return InvalidDataError(message)
            if state in _PG_CONFLICT_CLASSES:
                return ConflictError(f"concurrent update conflict: {message}")
            if state.startswith(_PG_CONSTRAINT_PREFIX):
                return ConstraintViolationError(message)
            if state.startswith(_PG_DATA_PREFIX):
                return InvalidDataError(message)
            if state.startswith(_PG_UNAVAILABLE_PREFIXES) or state == _PG_NO_DATABASE:
                return DatabaseUnavailableError(message)
            # Any other SQLSTATE (42xxx syntax or access, ...) is a bug, not an outage.
            return DataLayerError(message)
        if code is not None:
            if code in _SQLITE_UNIQUE:
                return ConflictError(message)
            if code & 0xFF == sqlite3.SQLITE_CONSTRAINT:
                return ConstraintViolationError(message)
            if code & 0xFF in _SQLITE_BUSY:
                return DatabaseUnavailableError(f"database is busy: {message}")
            if code & 0xFF in _SQLITE_UNAVAILABLE:
                return DatabaseUnavailableError(message)
            if code & 0xFF == sqlite3.SQLITE_READONLY:
                return ReadOnlyError(f"read-only: {message}")
            if code & 0xFF in (sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE):
                return InvalidDataError(message)
            # SQLITE_ERROR ("no such column", syntax) and the rest: a bug, not an outage.
            return DataLayerError(message)
        if isinstance(error, sa_exc.IntegrityError):
            return ConstraintViolationError(message)
        if isinstance(error, sa_exc.DataError):
            return InvalidDataError(message)
        if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return DatabaseUnavailableError(message)
        return DataLayerError(message)
    if isinstance(error, pg_exc.InterfaceError):
        # Raised by asyncpg outside SQLAlchemy's wrapping (a stream's cursor fetch after the
        # server dropped the connection); SQLAlchemy maps the same class to InterfaceError.
        return DatabaseUnavailableError(f"connection lost: {message}")
    if isinstance(error, sa_exc.TimeoutError):
        return DatabaseUnavailableError(f"no pooled connection free in time: {message}")
    if isinstance(error, sa_exc.StatementError):
        # Raised while binding parameters, before anything is sent: a bad value.
        if isinstance(error.orig, (ValueError, TypeError, LookupError, OverflowError, UnicodeError)):
            return InvalidDataError(f"invalid parameter: {error.orig}")
        return DataLayerError(message)
    if isinstance(error, OverflowError):
        return InvalidDataError(f"number out of range: {error}")
    if isinstance(error, (OSError, asyncio.TimeoutError, TimeoutError)):
        return DatabaseUnavailableError(f"cannot connect: {error!r}")
    if isinstance(error, sa_exc.SQLAlchemyError):
        return DataLayerError(message)
    return None


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.splitlines()[0] if text else type(error).__name__


def raise_translated(error: BaseException) -> NoReturn:
    """Raise the datalayer error for ``error`` (chaining it), or ``error`` itself if it is not one we know."""
    translated = classify(error)
    if translated is None or translated is error:
        raise error
    raise translated from error


@contextmanager
def translate_errors() -> Generator[None]:
    """Re-raise driver and SQLAlchemy errors as datalayer errors, chaining the original."""
    try:
        yield
    except Exception as exc:
        raise_translated(exc)
