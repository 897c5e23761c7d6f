"""Test harness: every ``db``/``session`` test runs on a SQLite file and on a real PostgreSQL.

The PostgreSQL server is started once per run on a throwaway data directory (see
``datalayer.testing``). Without PostgreSQL binaries the PostgreSQL cases are skipped
with a notice, except in CI (``CI=true``) where that is a failure.
Each test starts from empty tables. With ``DATALAYER_TEST_PGBOUNCER=1`` the PostgreSQL
``db`` goes through pgbouncer (transaction pooling) in front of that server.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database
from datalayer.factories import seed_factories
from datalayer.models import metadata
from datalayer.testing import (
    COUNTS,
    PgBouncerNotAvailable,
    PostgresNotAvailable,
    TemporaryPgBouncer,
    TemporaryPostgres,
    find_postgres_bin,
)
from tests.helpers import IN_CI, missing_prerequisite

# Loaded here too so that its ini setting (datalayer_backends, for examples/tests) is known
# whichever folder pytest is given.
pytest_plugins = ["datalayer.pytest_plugin"]

BACKENDS = ("sqlite", "postgresql")
THROUGH_PGBOUNCER = os.environ.get("DATALAYER_TEST_PGBOUNCER", "").lower() in ("1", "true", "yes")
if THROUGH_PGBOUNCER:
    # Every Database a test builds (even from a copied URL) then uses the pgbouncer settings.
    os.environ.setdefault("DATALAYER_PGBOUNCER", "1")

_outcomes: Counter[tuple[str, str]] = Counter()
_pg_skip_reason: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Print the counts of inputs tried and faults injected (datalayer.testing.COUNTS) at the end."""
    config.pluginmanager.register(COUNTS, "datalayer-counts")


def pytest_report_header(config: pytest.Config) -> str:
    """Name the PostgreSQL binaries the run's servers come from (CI runs two versions)."""
    return f"datalayer: PostgreSQL binaries from {find_postgres_bin() or 'nowhere (cases skipped)'}"


@pytest.fixture(scope="session", autouse=True)
def seeded_factories() -> None:
    """Seed the factories once, so a run's realistic rows are the same every time."""
    seed_factories(20261127)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TemporaryPostgres | None]:
    """Start one throwaway PostgreSQL server for the run (None when unavailable)."""
    url = os.environ.get("DATALAYER_TEST_POSTGRES_URL")
    if url:
        yield None
        return
    try:
        server = TemporaryPostgres(database="datalayer_test")
    except PostgresNotAvailable as exc:
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL is not available: {exc}")
        _pg_skip_reason.append(str(exc))
        yield None
        return
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: TemporaryPostgres | None) -> str:
    """Return the URL of the test PostgreSQL database, or skip when there is none."""
    url = os.environ.get("DATALAYER_TEST_POSTGRES_URL")
    if url:
        return url
    if postgres_server is None:
        pytest.skip(f"PostgreSQL not available: {_pg_skip_reason[0] if _pg_skip_reason else 'unknown'}")
    return postgres_server.url


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_server: TemporaryPostgres | None, postgres_url: str) -> Iterator[str]:
    """Return the test database's URL through a pgbouncer in transaction mode (started here)."""
    if postgres_server is None:
        pytest.skip("DATALAYER_TEST_PGBOUNCER needs the test's own PostgreSQL server")
    try:
        bouncer = TemporaryPgBouncer(postgres_server)
    except PgBouncerNotAvailable as exc:
        missing_prerequisite(exc)
    bouncer.start()
    try:
        yield bouncer.url
    finally:
        bouncer.cleanup()


@pytest.fixture(scope="session")
def sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the path of the SQLite test database file."""
    return tmp_path_factory.mktemp("sqlite") / "datalayer_test.db"


def url_for(backend: str, request: pytest.FixtureRequest) -> str:
    """Return the database URL of a backend for this test run."""
    if backend == "sqlite":
        path: Path = request.getfixturevalue("sqlite_path")
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pgbouncer_url" if THROUGH_PGBOUNCER else "postgres_url")
    return url


_databases: dict[str, Database] = {}


@pytest.fixture(scope="session")
async def databases() -> AsyncIterator[dict[str, Database]]:
    """Hold one schema-ready Database per backend for the whole run."""
    yield _databases
    for database in _databases.values():
        await database.dispose()
    _databases.clear()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Return the backend name this test case runs on."""
    name: str = request.param
    return name


@pytest.fixture
async def db(
    backend: str, request: pytest.FixtureRequest, databases: dict[str, Database]
) -> AsyncIterator[Database]:
    """Return the backend's Database with empty tables."""
    database = databases.get(backend)
    if database is None:
        database = Database(url_for(backend, request), pgbouncer=THROUGH_PGBOUNCER and backend != "sqlite")
        await database.drop_all()
        await database.create_all()
        databases[backend] = database
    await empty_tables(database)
    yield database


async def empty_tables(database: Database) -> None:
    """Delete every row of every table."""
    async with database.engine.begin() as conn:
        if database.backend == "postgresql":
            names = ", ".join(table.name for table in metadata.sorted_tables)
            await conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))
        else:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())


@pytest.fixture
async def empty_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Return the URL of a new, empty database on the backend (dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    server = make_url(request.getfixturevalue("postgres_url"))
    name = f"datalayer_empty_{uuid4().hex[:12]}"
    admin = create_async_engine(
        server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    # CREATE/DROP DATABASE take no bound parameters; the name is generated here, not user input.
    quoted = admin.dialect.identifier_preparer.quote(name)
    async with admin.connect() as conn:
        await conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        await admin.dispose()


@pytest.fixture
async def session(db: Database) -> AsyncIterator[AsyncSession]:
    """Yield one unit of work on the backend's database (committed at the end)."""
    async with db.session() as unit:
        yield unit


def backend_of(nodeid: str) -> str:
    """Return the backend a test id was parametrized with ("other" for backend-free tests)."""
    params = nodeid.rpartition("[")[2].rstrip("]").split("-") if nodeid.endswith("]") else []
    return next((name for name in BACKENDS if name in params), "other")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count outcomes per backend for the summary."""
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _outcomes[(backend_of(report.nodeid), report.outcome)] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the pass/fail/skip counts of each backend."""
    terminalreporter.section("datalayer: results per backend")
    for backend in (*BACKENDS, "other"):
        counts = {outcome: _outcomes[(backend, outcome)] for outcome in ("passed", "failed", "skipped")}
        if any(counts.values()):
            summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
            terminalreporter.write_line(f"{backend:>10}: {summary}")
    if _pg_skip_reason:
        terminalreporter.write_line(f"NOTICE: PostgreSQL cases skipped: {_pg_skip_reason[0]}", yellow=True)
