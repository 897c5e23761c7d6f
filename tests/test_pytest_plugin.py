"""datalayer.pytest_plugin, run as a user's suite would run it: pytest in a subprocess, in a new folder.

The inner suites point the plugin at a fresh empty database of the backend
(``$DATALAYER_TEST_DATABASE_URL``), so no second server starts; afterwards this test looks
at that database itself: migrated, and empty although the inner tests committed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from datalayer import migrate

CONFTEST = 'pytest_plugins = ["datalayer.pytest_plugin"]\n'

# The code under test commits three ways: a unit of work, the FastAPI dependency, the factories.
COMMITS = textwrap.dedent(
    """
    from typing import Annotated

    import httpx
    import pytest
    from fastapi import Depends, FastAPI
    from sqlmodel.ext.asyncio.session import AsyncSession

    from datalayer import Database
    from datalayer.factories import SessionFactory, UserFactory
    from datalayer.models import SessionModel, UserModel
    from datalayer.repositories import Repository, UserRepository

    pytestmark = MARKS


    async def rows(db: Database, model: type) -> int:
        async with db.session(read_only=True) as s:
            return await Repository(model, s).count(include_deleted=True)


    async def test_1_code_under_test_commits(datalayer_db: Database, datalayer_backend: str) -> None:
        async with datalayer_db.session() as s:  # commits (releases its savepoint)
            await UserRepository(s).create(email="unit@example.com", username="unit")

        app = FastAPI()

        @app.post("/users", status_code=201)
        async def create(s: Annotated[AsyncSession, Depends(datalayer_db.session_dependency)]) -> None:
            await UserRepository(s).create(email="api@example.com", username="api")

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.post("/users")).status_code == 201
        sessions = await SessionFactory.create_batch_async(2)  # and their one user
        assert len({s.user_id for s in sessions}) == 1
        assert await rows(datalayer_db, UserModel) == 3
        assert await rows(datalayer_db, SessionModel) == 2


    async def test_2_nothing_is_left_behind(datalayer_db: Database, datalayer_backend: str) -> None:
        assert await rows(datalayer_db, UserModel) == 0
        assert await rows(datalayer_db, SessionModel) == 0
        user = await UserFactory.create_async(email="unit@example.com")  # the same address is free
        assert user.email == "unit@example.com"
    """
)

RUNNERS = {
    # pytest-asyncio with session-scoped loops (this repository's own setting).
    "asyncio-session-loop": (
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = session\n"
        "asyncio_default_test_loop_scope = session\n",
        "[]",
        (),
    ),
    # anyio's pytest plugin alone, as in a project that does not use pytest-asyncio.
    "anyio": (
        "[pytest]\n",
        "[pytest.mark.anyio]",
        ("-p", "no:asyncio"),
    ),
}
ANYIO_CONFTEST = textwrap.dedent(
    """
    import pytest


    @pytest.fixture
    def anyio_backend() -> str:
        return "asyncio"
    """
)


def run_pytest(
    folder: Path, files: dict[str, str], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Write ``files`` into ``folder`` and run pytest there; return the finished process."""
    for name, text in files.items():
        (folder / name).write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=folder,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.parametrize("runner", RUNNERS)
async def test_commits_of_the_code_under_test_are_rolled_back_after_each_test(
    tmp_path: Path, backend: str, empty_url: str, runner: str
) -> None:
    ini, marks, options = RUNNERS[runner]
    files = {
        "pytest.ini": ini,
        "conftest.py": CONFTEST + (ANYIO_CONFTEST if runner == "anyio" else ""),
        "test_commits.py": COMMITS.replace("MARKS", marks),
    }
    env = {"DATALAYER_TEST_DATABASE_URL": empty_url}
    result = await asyncio.to_thread(
        run_pytest, tmp_path, files, "-q", "--datalayer-backend", backend, *options, env=env
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout.splitlines()[-1]
    # Migrated once, and empty although the first test committed five rows.
    assert await migrate.current_async(empty_url) == migrate.head()
    engine = create_async_engine(empty_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            users = (await conn.execute(sa.text("SELECT count(*) FROM users"))).scalar_one()
            sessions = (await conn.execute(sa.text("SELECT count(*) FROM sessions"))).scalar_one()
    finally:
        await engine.dispose()
    assert (users, sessions) == (0, 0)


def test_backends_come_from_the_option_the_ini_setting_or_the_marker(tmp_path: Path) -> None:
    files = {
        "pytest.ini": "[pytest]\nasyncio_mode = auto\ndatalayer_backends = sqlite postgresql\n",
        "conftest.py": CONFTEST,
        "test_backends.py": textwrap.dedent(
            """
            import pytest


            def test_configured(datalayer_backend: str) -> None:
                pass


            @pytest.mark.datalayer_backends("postgresql")
            def test_marked(datalayer_backend: str) -> None:
                pass


            def test_without_the_database() -> None:
                pass
            """
        ),
    }
    from_ini = run_pytest(tmp_path, files, "--collect-only", "-q")
    assert from_ini.stdout.splitlines()[:4] == [
        "test_backends.py::test_configured[sqlite]",
        "test_backends.py::test_configured[postgresql]",
        "test_backends.py::test_marked[postgresql]",
        "test_backends.py::test_without_the_database",
    ]
    from_option = run_pytest(tmp_path, {}, "--collect-only", "-q", "--datalayer-backend", "sqlite")
    assert from_option.stdout.splitlines()[:3] == [
        "test_backends.py::test_configured[sqlite]",
        "test_backends.py::test_marked[postgresql]",
        "test_backends.py::test_without_the_database",
    ]
    unknown = run_pytest(tmp_path, {}, "--collect-only", "-q", "--datalayer-backend", "mysql")
    assert unknown.returncode != 0
    assert "mysql" in unknown.stderr
