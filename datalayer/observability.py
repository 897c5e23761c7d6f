"""Logs for operators: the slow-query log and one record per failed unit of work.

Two loggers, both silent until a handler is configured (``logging.basicConfig`` is enough):

- ``datalayer.sql.slow``: a WARNING for every statement that ran at least
  ``Database(slow_query_seconds=...)`` (default 1.0 s; ``None`` turns it off), with its
  duration, the backend, primary or replica, host and database (never the user or password)
  and the statement text. Bound parameters are never logged: the text carries their
  placeholders (``$1``, ``?``), not their values. On SQLite a writer that waited for the
  write lock shows up as a slow first statement of its unit of work (its ``BEGIN IMMEDIATE``
  goes in the same trip).
- ``datalayer.unit``: one record per unit of work (``Database.session()``) that ended in an
  exception and was rolled back, with the exception class and the SQLSTATE (PostgreSQL) or the
  extended result code (SQLite) when the database gave one. The error message is not logged,
  because messages can quote row values. WARNING for ``DatabaseUnavailableError``,
  ``ReadOnlyError`` (a bug) and errors datalayer could not classify, INFO for the expected ones
  (conflicts, constraint violations, invalid data, not found) and the application's own
  exceptions, DEBUG for cancellation.

For structured log handlers each record also carries its values as attributes: ``duration``
(seconds), ``db_role``, ``db_where`` and ``statement`` on slow-query records; ``error_class``,
``sqlstate``, ``sqlite_code``, ``db_backend`` and ``read_only`` on unit records.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from datalayer.errors import (
    DatabaseUnavailableError,
    DataLayerError,
    InvalidDataError,
    ReadOnlyError,
    sqlite_code,
    sqlstate,
)

__all__ = [
    "DEFAULT_SLOW_QUERY_SECONDS",
    "SLOW_QUERY_LOGGER",
    "UNIT_LOGGER",
    "SlowQueryLog",
    "check_slow_query_seconds",
    "log_failed_unit",
    "watch_slow_queries",
]

SLOW_QUERY_LOGGER = "datalayer.sql.slow"
"""Name of the logger that receives the slow-query records."""
UNIT_LOGGER = "datalayer.unit"
"""Name of the logger that receives one record per failed unit of work."""
DEFAULT_SLOW_QUERY_SECONDS = 1.0
"""The slow-query threshold of ``Database`` when none is given, in seconds."""

slow_logger = logging.getLogger(SLOW_QUERY_LOGGER)
unit_logger = logging.getLogger(UNIT_LOGGER)

# Long statements (a batched INSERT of thousands of rows) are cut: the start says what it was.
_MAX_STATEMENT_CHARS = 1000


def check_slow_query_seconds(value: object) -> float | None:
    """Return the threshold if it is None or a finite number of seconds >= 0, else raise InvalidDataError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidDataError.for_field(
            "slow_query_seconds", value, "must be None or a finite number of seconds >= 0"
        )
    return float(value)


def watch_slow_queries(engine: AsyncEngine, *, role: str, threshold: float | None) -> SlowQueryLog | None:
    """Log every statement of ``engine`` that takes ``threshold`` seconds or more; return the log.

    ``role`` ("primary" or "replica") is written into each record. ``threshold=None``
    installs nothing (and returns None), so a disabled log costs nothing per statement.

    The timing wraps the driver call itself (the dialect's ``do_execute`` events), not the
    engine's cursor events: a cursor listener puts every statement on SQLAlchemy's slower
    event path (``before_execute``/``after_execute`` dispatch too), which cost ~100 Python
    calls a statement; this costs a few. SQLAlchemy runs no ``do_execute`` listener after one
    that sent the statement: a user's own on the same engine runs only with the log off.
    """
    if threshold is None:
        return None
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect
    log = SlowQueryLog(role, _where(sync_engine), threshold)

    def timed(send: Callable[..., None]) -> Callable[..., bool]:
        """Return a listener that sends the statement through ``send`` and times it."""

        def listener(cursor: Any, statement: str, *rest: Any) -> bool:
            started = time.perf_counter()
            try:
                send(cursor, statement, *rest)
            except BaseException as error:
                log.check(started, statement, error)
                raise
            log.check(started, statement, None)
            return True  # sent: SQLAlchemy skips its own call

        return listener

    event.listen(sync_engine, "do_execute", timed(dialect.do_execute))
    event.listen(sync_engine, "do_executemany", timed(dialect.do_executemany))
    event.listen(sync_engine, "do_execute_no_params", timed(dialect.do_execute_no_params))
    return log


class SlowQueryLog:
    """The slow-query log of one engine: its threshold and where its records say they ran."""

    __slots__ = ("role", "threshold", "where")

    def __init__(self, role: str, where: str, threshold: float) -> None:
        self.role = role
        self.where = where
        self.threshold = threshold

    def check(self, started: float, statement: str, error: BaseException | None) -> None:
        """Log ``statement`` if it ran ``threshold`` seconds or more since ``started``; returns None."""
        duration = time.perf_counter() - started
        if duration < self.threshold:
            return
        outcome = "" if error is None else f" (failed: {type(error).__name__})"
        text = _shorten(statement)
        slow_logger.warning(
            "slow query: %.3f s on %s %s%s: %s",
            duration,
            self.role,
            self.where,
            outcome,
            text,
            extra={"duration": duration, "db_role": self.role, "db_where": self.where, "statement": text},
        )


def _where(engine: Engine) -> str:
    """Return ``backend://host:port/database`` for the engine, without user or password."""
    url = engine.url
    host = url.host or ""
    if url.port is not None:
        host = f"{host}:{url.port}"
    return f"{url.get_backend_name()}://{host}/{url.database or ''}"


def _shorten(statement: str) -> str:
    """Return the statement on one line, cut to a readable length."""
    text = " ".join(statement.split())
    if len(text) > _MAX_STATEMENT_CHARS:
        text = f"{text[:_MAX_STATEMENT_CHARS]}... ({len(text)} chars)"
    return text


def log_failed_unit(
    error: BaseException, *, backend: str, read_only: bool, cause: BaseException | None = None
) -> None:
    """Write the one ``datalayer.unit`` record for a unit of work rolled back after ``error``; returns None.

    ``cause`` is the driver-level exception when ``error`` was translated from it but not
    yet chained.
    """
    sqlstate, sqlite_code = _codes(error, cause)
    code = f"SQLSTATE {sqlstate}" if sqlstate else f"SQLite code {sqlite_code}" if sqlite_code else "no code"
    kind = "read-only unit" if read_only else "unit"
    unit_logger.log(
        _level(error),
        "%s of work on %s rolled back: %s (%s)",
        kind,
        backend,
        type(error).__name__,
        code,
        extra={
            "error_class": type(error).__name__,
            "sqlstate": sqlstate,
            "sqlite_code": sqlite_code,
            "db_backend": backend,
            "read_only": read_only,
        },
    )


def _level(error: BaseException) -> int:
    if isinstance(error, asyncio.CancelledError | GeneratorExit | KeyboardInterrupt | SystemExit):
        return logging.DEBUG
    if isinstance(error, DatabaseUnavailableError | ReadOnlyError) or type(error) is DataLayerError:
        return logging.WARNING
    return logging.INFO


def _codes(error: BaseException, cause: BaseException | None) -> tuple[str | None, int | None]:
    """Return the SQLSTATE and the SQLite extended result code found in the exception's chain."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 6:
        chain.append(current)
        current = current.__cause__ or (cause if current is error else None)
    for link in chain:
        if isinstance(link, DBAPIError) and link.orig is not None:
            return sqlstate(link.orig), sqlite_code(link.orig)
    return None, None
