"""OpenTelemetry spans for every statement a ``Database`` runs, on its primary and its replica.

``datalayer.instrument(db)`` needs the ``otel`` extra (``opentelemetry-api``); spans go
nowhere until the application configures an SDK ``TracerProvider``. Each statement becomes
one CLIENT span, a child of whatever span is current when the unit of work runs it, named
``"{operation} {database}"`` (``"SELECT app"``; a SQLite file's name without its directory)
and carrying the stable database semantic
conventions:

- ``db.system.name`` (``postgresql`` or ``sqlite``), ``db.namespace`` (the database),
  ``db.operation.name`` (the statement's first word), ``db.query.text`` (the statement with
  its placeholders; bound parameter values are never recorded);
- ``server.address`` and ``server.port`` on PostgreSQL;
- ``datalayer.role``: ``primary`` or ``replica``;
- on failure, status ERROR, ``error.type`` and ``db.response.status_code`` (the SQLSTATE or
  SQLite result code) when the database gave one; the message is not recorded, as it can
  quote row values.

Applications that already use ``opentelemetry-instrumentation-sqlalchemy`` can instead pass
both engines to it; its release 0.66b2 declares SQLAlchemy < 2.1 and silently does nothing
unless told ``skip_dep_check=True``, and it only sees engines created through the functions it
patches (datalayer imported ``create_async_engine`` before), so name the engines:

```python
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

SQLAlchemyInstrumentor().instrument(
    engines=[engine.sync_engine for _, engine in db.engines()],  # primary, replica, read pool
    tracer_provider=provider,
    skip_dep_check=True,
)
```

Statements are what the driver sends through a cursor: ``COMMIT`` and ``ROLLBACK``, which the
drivers issue through their own transaction calls, get no span (with either instrumentation).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext, ExecutionContext
from sqlalchemy.exc import DBAPIError

from datalayer.errors import sqlite_code, sqlstate

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from datalayer.database import Database

__all__ = ["instrument", "uninstrument"]

_SPAN = "_datalayer_span"
_Listener = tuple[str, Callable[..., Any]]
# The listeners instrument() installed on each engine, so that uninstrument() (or a second
# instrument()) can remove exactly those.
_installed: weakref.WeakKeyDictionary[Engine, list[_Listener]] = weakref.WeakKeyDictionary()


def instrument(db: Database, *, tracer_provider: TracerProvider | None = None) -> None:
    """Emit a span for every statement ``db`` runs, on the primary and on the replica; returns None.

    ``tracer_provider`` defaults to the global one. Calling it again replaces the earlier
    instrumentation of ``db`` (no duplicate spans). Raises ImportError naming the ``otel``
    extra when opentelemetry-api is not installed.
    """
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ImportError("datalayer.instrument needs opentelemetry-api: install the otel extra") from exc

    from datalayer import __version__

    tracer = trace.get_tracer("datalayer", __version__, tracer_provider=tracer_provider)
    for role, engine in db.engines():
        sync_engine = engine.sync_engine
        _remove(sync_engine)
        _installed[sync_engine] = _listen(sync_engine, _StatementSpans(tracer, sync_engine, role))


def uninstrument(db: Database) -> None:
    """Stop emitting spans for ``db``'s statements; returns None."""
    for _, engine in db.engines():
        _remove(engine.sync_engine)


def _listen(engine: Engine, spans: _StatementSpans) -> list[_Listener]:
    listeners: list[_Listener] = [
        ("before_cursor_execute", spans.start),
        ("after_cursor_execute", spans.end),
        ("handle_error", spans.fail),
    ]
    for identifier, listener in listeners:
        event.listen(engine, identifier, listener)
    return listeners


def _remove(engine: Engine) -> None:
    for identifier, listener in _installed.pop(engine, []):
        event.remove(engine, identifier, listener)


class _StatementSpans:
    """The event listeners that open and close one span per statement on one engine."""

    def __init__(self, tracer: Tracer, engine: Engine, role: str) -> None:
        from opentelemetry.trace import SpanKind

        self.tracer = tracer
        self.kind = SpanKind.CLIENT
        url = engine.url
        namespace = url.database or ""
        # A SQLite database is a file path: its name is enough in a span name.
        self.database = PurePath(namespace).name if url.get_backend_name() == "sqlite" else namespace
        self.attributes: dict[str, str | int] = {
            "db.system.name": url.get_backend_name(),
            "db.namespace": namespace,
            "datalayer.role": role,
        }
        if url.host:
            self.attributes["server.address"] = url.host
        if url.port is not None:
            self.attributes["server.port"] = url.port

    def start(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        params: Any,
        context: ExecutionContext | None,
        many: bool,
    ) -> None:
        """Open the statement's span (before the driver sends it)."""
        if context is None:
            return
        words = statement.split(maxsplit=1)
        operation = words[0].upper() if words else ""
        span = self.tracer.start_span(
            f"{operation} {self.database}".strip(),
            kind=self.kind,
            attributes={**self.attributes, "db.operation.name": operation, "db.query.text": statement},
        )
        setattr(context, _SPAN, span)

    def end(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        params: Any,
        context: ExecutionContext | None,
        many: bool,
    ) -> None:
        """Close the statement's span (after the driver returned)."""
        span = _take_span(context)
        if span is not None:
            span.end()

    def fail(self, exception_context: ExceptionContext) -> None:
        """Close the statement's span with status ERROR (the driver raised, or the task was cancelled)."""
        span = _take_span(exception_context.execution_context)
        if span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        error = exception_context.original_exception
        code = _database_code(exception_context.sqlalchemy_exception)
        span.set_attribute("error.type", code or type(error).__name__)
        if code is not None:
            span.set_attribute("db.response.status_code", code)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()


def _take_span(context: ExecutionContext | None) -> Span | None:
    """Return the open span stored on an execution, removing it (so it is ended once)."""
    if context is None:
        return None
    span: Span | None = getattr(context, _SPAN, None)
    if span is not None:
        setattr(context, _SPAN, None)
    return span


def _database_code(error: BaseException | None) -> str | None:
    """Return the SQLSTATE or the SQLite extended result code of a wrapped driver error."""
    if not isinstance(error, DBAPIError) or error.orig is None:
        return None
    state = sqlstate(error.orig)
    if state is not None:
        return state
    code = sqlite_code(error.orig)
    return str(code) if code is not None else None
