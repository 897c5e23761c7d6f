"""Observability: the slow-query log, the failed-unit log and OpenTelemetry spans, on both backends.

Slow statements are real: ``pg_sleep`` on PostgreSQL, a sleeping SQL function registered on
each SQLite connection. Spans go to the OpenTelemetry SDK's in-memory exporter, from the
primary and from a real streaming replica.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from datalayer import Database, instrument, uninstrument
from datalayer.errors import (
    ConflictError,
    ConstraintViolationError,
    DataLayerError,
    InvalidDataError,
    ReadOnlyError,
)
from datalayer.models import SessionModel, UserModel
from datalayer.observability import SLOW_QUERY_LOGGER, UNIT_LOGGER
from datalayer.repositories import Repository
from datalayer.testing import TemporaryPostgres, TemporaryReplica
from tests.conftest import url_for
from tests.helpers import make_user
from tests.test_replica import servers

__all__ = ["servers"]  # the primary + streaming replica fixture, shared with test_replica

PASSWORD = "s3cret-Pa55word"  # the test servers trust every login, so any password connects
SECRET = "hunter2-bound-value"  # a bound parameter value that must never reach a log or a span


@pytest.fixture
def url(backend: str, request: pytest.FixtureRequest) -> str:
    """Return the backend's test database URL, with a password on PostgreSQL."""
    raw = make_url(url_for(backend, request))
    if backend == "postgresql":
        raw = raw.set(password=PASSWORD)
    return raw.render_as_string(hide_password=False)


@pytest.fixture
def tracing() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """Return an SDK tracer provider whose spans land in an in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _sleep_then(seconds: float, fail: bool) -> float:
    time.sleep(seconds)
    if fail:
        raise RuntimeError("failing on purpose after sleeping")
    return seconds


def add_sqlite_sleep(db: Database) -> None:
    """Give every new SQLite connection ``sleep_seconds(s)`` and ``sleep_then_fail(s)``."""
    if db.backend != "sqlite":
        return

    @sa.event.listens_for(db.engine.sync_engine, "connect")
    def _functions(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.create_function("sleep_seconds", 1, lambda s: _sleep_then(s, False))
        dbapi_connection.create_function("sleep_then_fail", 1, lambda s: _sleep_then(s, True))


def sleeping(db: Database) -> sa.TextClause:
    """Return a statement that sleeps ``:seconds`` and selects the bound ``:secret``."""
    if db.backend == "postgresql":
        return sa.text("SELECT pg_sleep(:seconds), CAST(:secret AS TEXT)")
    return sa.text("SELECT sleep_seconds(:seconds), :secret")


def sleeping_then_failing(db: Database) -> sa.TextClause:
    """Return a statement that sleeps ``:seconds`` and then fails in the database."""
    if db.backend == "postgresql":
        # Division by zero once the sleep has returned (22012, InvalidDataError).
        return sa.text("SELECT 1 / (SELECT 0 FROM pg_sleep(:seconds)), CAST(:secret AS TEXT)")
    return sa.text("SELECT sleep_then_fail(:seconds), :secret")


@pytest.fixture
async def slow_db(url: str) -> AsyncIterator[Database]:
    """Return a Database on the backend that logs statements of 0.5 s or more."""
    database = Database(url, slow_query_seconds=0.5)
    add_sqlite_sleep(database)
    try:
        yield database
    finally:
        await database.dispose()


def records_of(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    """Return the captured records of one logger."""
    return [record for record in caplog.records if record.name == name]


# -- the slow-query log ------------------------------------------------------------------------


async def test_a_slow_statement_is_logged_once_without_values_or_password(
    slow_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="datalayer")
    async with slow_db.session() as s:
        await (await s.connection()).execute(sa.text("SELECT 1"))
        result = await (await s.connection()).execute(sleeping(slow_db), {"seconds": 0.6, "secret": SECRET})
        assert result.one()[1] == SECRET
    slow = records_of(caplog, SLOW_QUERY_LOGGER)
    sleeps = [record for record in slow if "sleep" in record.getMessage()]
    assert len(sleeps) == 1, [record.getMessage() for record in slow]
    record = sleeps[0]
    message = record.getMessage()
    print(f"\ncaptured: {record.levelname} {record.name}: {message}")
    assert record.levelno == logging.WARNING
    assert 0.6 <= record.__dict__["duration"] < 60
    assert message.startswith(
        f"slow query: {record.__dict__['duration']:.3f} s on primary {slow_db.backend}://"
    )
    assert (f":{slow_db.url.port}/" if slow_db.backend == "postgresql" else ".db:") in message
    assert message.endswith(
        ": SELECT pg_sleep($1), CAST($2 AS TEXT)"
        if slow_db.backend == "postgresql"
        else ": SELECT sleep_seconds(?), ?"
    )
    everything = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert SECRET not in everything
    assert PASSWORD not in everything
    assert "postgres@" not in everything  # no user name either


async def test_a_slow_statement_that_fails_is_logged_with_its_error(
    slow_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=SLOW_QUERY_LOGGER)
    with pytest.raises(DataLayerError):
        async with slow_db.session() as s:
            await (await s.connection()).execute(
                sleeping_then_failing(slow_db), {"seconds": 0.6, "secret": SECRET}
            )
    (record,) = records_of(caplog, SLOW_QUERY_LOGGER)
    assert "(failed: " in record.getMessage()
    assert record.__dict__["duration"] >= 0.6
    assert SECRET not in caplog.text


@pytest.mark.parametrize(("threshold", "logged"), [(None, 0), (0.0, 1)])
async def test_the_threshold_decides_what_is_logged(
    url: str, threshold: float | None, logged: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=SLOW_QUERY_LOGGER)
    database = Database(url, slow_query_seconds=threshold)
    add_sqlite_sleep(database)
    try:
        async with database.engine.connect() as conn:
            await conn.execute(sleeping(database), {"seconds": 0.05, "secret": SECRET})
    finally:
        await database.dispose()
    sleeps = [r for r in records_of(caplog, SLOW_QUERY_LOGGER) if "sleep" in r.getMessage()]
    assert len(sleeps) == logged


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "1"])
def test_a_bad_threshold_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidDataError) as caught:
        Database("sqlite+aiosqlite://", slow_query_seconds=bad)  # type: ignore[arg-type]  # refused input
    assert caught.value.field == "slow_query_seconds"


# -- one record per failed unit of work ---------------------------------------------------------


def unit_codes(backend: str, sqlstate: str, sqlite_code: int) -> str:
    """Return the code text a unit record shows on the backend."""
    return f"SQLSTATE {sqlstate}" if backend == "postgresql" else f"SQLite code {sqlite_code}"


async def test_a_conflict_is_logged_once_with_class_and_code(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async with db.session() as s:
        await make_user(s, email="taken@example.com", username="first")
    caplog.set_level(logging.DEBUG, logger="datalayer")
    with pytest.raises(ConflictError):
        async with db.session() as s:
            await make_user(s, email="taken@example.com", username="second")
    datalayer_records = [r for r in caplog.records if r.name.startswith("datalayer")]
    assert [r.name for r in datalayer_records] == [UNIT_LOGGER]
    (record,) = datalayer_records
    print(f"\ncaptured: {record.levelname} {record.name}: {record.getMessage()}")
    assert record.levelno == logging.INFO
    assert record.__dict__["error_class"] == "ConflictError"
    # 2067: SQLITE_CONSTRAINT_UNIQUE
    assert unit_codes(db.backend, "23505", 2067) in record.getMessage()
    assert "taken@example.com" not in caplog.text


async def test_a_constraint_violation_is_logged_once_with_class_and_code(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="datalayer")
    with pytest.raises(ConstraintViolationError):
        async with db.session() as s:
            await Repository(SessionModel, s).create(user_id=uuid4())
    (record,) = records_of(caplog, UNIT_LOGGER)
    assert record.__dict__["error_class"] == "ConstraintViolationError"
    # 23503: foreign_key_violation; 787: SQLITE_CONSTRAINT_FOREIGNKEY
    assert unit_codes(db.backend, "23503", 787) in record.getMessage()
    async with db.session() as s:
        assert await Repository(SessionModel, s).count() == 0


async def test_raw_sql_failing_in_a_unit_is_logged_with_the_translated_class(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=UNIT_LOGGER)
    with pytest.raises(DataLayerError) as caught:
        async with db.session() as s:
            await (await s.connection()).execute(sa.text("SELECT * FROM no_such_table"))
    (record,) = records_of(caplog, UNIT_LOGGER)
    assert record.__dict__["error_class"] == type(caught.value).__name__
    assert record.levelno == logging.WARNING
    # 42P01: undefined_table; 1: SQLITE_ERROR
    assert unit_codes(db.backend, "42P01", 1) in record.getMessage()


async def test_a_write_in_a_read_only_unit_is_logged_as_a_warning(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=UNIT_LOGGER)
    with pytest.raises(ReadOnlyError):
        async with db.session(read_only=True) as s:
            await make_user(s)
    (record,) = records_of(caplog, UNIT_LOGGER)
    assert record.levelno == logging.WARNING
    expected = f"read-only unit of work on {db.backend} rolled back: ReadOnlyError (no code)"
    assert record.getMessage() == expected


async def test_a_successful_unit_logs_nothing_and_a_cancelled_one_only_at_debug(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=UNIT_LOGGER)
    async with db.session() as s:
        await make_user(s)
    assert records_of(caplog, UNIT_LOGGER) == []

    started = asyncio.Event()

    async def wait_in_a_unit() -> None:
        async with db.session() as s:
            await make_user(s)
            started.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(wait_in_a_unit())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (record,) = records_of(caplog, UNIT_LOGGER)
    assert (record.levelno, record.__dict__["error_class"]) == (logging.DEBUG, "CancelledError")
    async with db.session() as s:
        assert await Repository(UserModel, s).count() == 1


# -- OpenTelemetry ----------------------------------------------------------------------------


def statement_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """Return the finished spans datalayer emitted (one per statement)."""
    return [
        span
        for span in exporter.get_finished_spans()
        if span.instrumentation_scope and span.instrumentation_scope.name == "datalayer"
    ]


async def test_every_statement_gets_a_span_under_the_current_one(
    db: Database, tracing: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = tracing
    sent: list[str] = []  # every statement the driver received, seen by a listener of our own

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    instrument(db, tracer_provider=provider)
    try:
        with provider.get_tracer("app").start_as_current_span("request") as request:
            async with db.session() as s:
                await make_user(s, email="span@example.com")
                assert await Repository(UserModel, s).count() == 1
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", record)
        spans = statement_spans(exporter)
        print(f"\nspans ({db.backend}): {[span.name for span in spans]}")
        print(f"attributes: {dict(spans[-1].attributes or {})}")
        assert [dict(span.attributes or {})["db.query.text"] for span in spans] == sent
        operations = [span.name.split()[0] for span in spans]
        assert "INSERT" in operations
        assert "SELECT" in operations
        database = db.url.database or ""
        for span in spans:
            attributes = dict(span.attributes or {})
            assert span.kind is SpanKind.CLIENT
            assert span.parent is not None
            assert span.parent.span_id == request.get_span_context().span_id
            assert span.name == f"{attributes['db.operation.name']} {database.rpartition('/')[2]}"
            assert attributes["db.system.name"] == db.backend
            assert attributes["db.namespace"] == database
            assert attributes["datalayer.role"] == "primary"
            assert "span@example.com" not in str(attributes)
            if db.backend == "postgresql":
                assert (attributes["server.address"], attributes["server.port"]) == (db.url.host, db.url.port)

        # A second instrument() replaces the first: still one span per statement.
        instrument(db, tracer_provider=provider)
        exporter.clear()
        async with db.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        selects = [span.name for span in statement_spans(exporter) if span.name.startswith("SELECT")]
        assert selects == [f"SELECT {database.rpartition('/')[2]}"]
    finally:
        uninstrument(db)
    exporter.clear()
    async with db.session() as s:
        assert await Repository(UserModel, s).count() == 1
    assert statement_spans(exporter) == []


async def test_a_failing_statement_ends_its_span_with_error_and_code(
    db: Database, tracing: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = tracing
    async with db.session() as s:
        await make_user(s, email="taken@example.com", username="first")
    instrument(db, tracer_provider=provider)
    try:
        with pytest.raises(ConflictError):
            async with db.session() as s:
                await make_user(s, email="taken@example.com", username="second")
    finally:
        uninstrument(db)
    (failed,) = [span for span in statement_spans(exporter) if span.status.status_code is StatusCode.ERROR]
    code = "23505" if db.backend == "postgresql" else "2067"
    attributes = dict(failed.attributes or {})
    assert (attributes["error.type"], attributes["db.response.status_code"]) == (code, code)
    assert failed.name.startswith("INSERT ")
    assert "taken@example.com" not in str(attributes) + str(failed.status.description)


@pytest.mark.parametrize("backend", ["postgresql"])  # a running SQLite call cannot be interrupted
async def test_a_cancelled_statement_ends_its_span(
    slow_db: Database, tracing: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = tracing
    instrument(slow_db, tracer_provider=provider)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3), slow_db.session() as s:
            await (await s.connection()).execute(sleeping(slow_db), {"seconds": 30, "secret": SECRET})
    (cancelled,) = [span for span in statement_spans(exporter) if "pg_sleep" in str(span.attributes)]
    assert cancelled.status.status_code is StatusCode.ERROR
    assert cancelled.end_time is not None
    async with slow_db.session() as s:  # the pool and the instrumentation still work
        assert (await (await s.connection()).execute(sa.text("SELECT 1"))).scalar_one() == 1


async def test_the_upstream_sqlalchemy_instrumentation_recipe(
    db: Database, tracing: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    provider, exporter = tracing
    instrumentor = SQLAlchemyInstrumentor()
    instrumentor.instrument(engines=[db.engine.sync_engine], tracer_provider=provider, skip_dep_check=True)
    try:
        async with db.session() as s:
            await make_user(s)
    finally:
        instrumentor.uninstrument()
    names = [span.name.split()[0] for span in exporter.get_finished_spans()]
    assert "INSERT" in names


async def test_instrument_without_opentelemetry_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if opentelemetry-api were not installed
    db = Database("sqlite+aiosqlite://")
    try:
        with pytest.raises(ImportError, match="otel extra"):
            instrument(db)
    finally:
        await db.dispose()


def test_import_datalayer_does_not_import_opentelemetry() -> None:
    code = "import sys, datalayer; print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -- primary and replica -------------------------------------------------------------------------


async def sleep_on_primary_and_replica(db: Database) -> None:
    """Run the sleeping statement in a write unit (primary) and in a read-only unit (replica)."""
    async with db.session() as s:
        await (await s.connection()).execute(sleeping(db), {"seconds": 0.35, "secret": SECRET})
    async with db.session(read_only=True) as s:
        await (await s.connection()).execute(sleeping(db), {"seconds": 0.35, "secret": SECRET})


async def test_spans_and_slow_log_on_primary_and_replica(
    servers: tuple[TemporaryPostgres, TemporaryReplica],
    tracing: tuple[TracerProvider, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    primary, replica = servers
    provider, exporter = tracing
    caplog.set_level(logging.WARNING, logger=SLOW_QUERY_LOGGER)
    db = Database(primary.url, replica_url=replica.url, connect_timeout=5, slow_query_seconds=0.3)
    assert db.replica_engine is not None
    try:
        instrument(db, tracer_provider=provider)
        await sleep_on_primary_and_replica(db)
        uninstrument(db)
        # The documented recipe with the upstream instrumentation, both engines named.
        upstream = SQLAlchemyInstrumentor()
        upstream.instrument(
            engines=[db.engine.sync_engine, db.replica_engine.sync_engine],
            tracer_provider=provider,
            skip_dep_check=True,
        )
        try:
            await sleep_on_primary_and_replica(db)
        finally:
            upstream.uninstrument()
    finally:
        uninstrument(db)
        await db.dispose()
    roles = {
        str((span.attributes or {})["datalayer.role"]): span
        for span in statement_spans(exporter)
        if "pg_sleep" in str((span.attributes or {})["db.query.text"])
    }
    assert sorted(roles) == ["primary", "replica"]
    assert roles["primary"].attributes and roles["primary"].attributes["server.port"] == primary.port
    assert roles["replica"].attributes and roles["replica"].attributes["server.port"] == replica.port
    upstream_ports = sorted(
        int(str(attributes.get("server.port", attributes.get("net.peer.port"))))
        for span in exporter.get_finished_spans()
        if span.instrumentation_scope and span.instrumentation_scope.name.startswith("opentelemetry.")
        for attributes in [dict(span.attributes or {})]
        if "pg_sleep" in str(attributes)
    )
    assert upstream_ports == sorted([primary.port, replica.port])
    logged = [r.getMessage() for r in records_of(caplog, SLOW_QUERY_LOGGER) if "sleep" in r.getMessage()]
    print("\n" + "\n".join(logged))
    assert len(logged) == 4
    assert f"on primary postgresql://127.0.0.1:{primary.port}/" in logged[0]
    assert f"on replica postgresql://127.0.0.1:{replica.port}/" in logged[1]
    assert SECRET not in caplog.text + str([span.attributes for span in exporter.get_finished_spans()])
