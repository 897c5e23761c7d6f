"""mypy --strict over the package, factories, tests and migrations, and pyright strict over the
package, factories and examples, are part of the test suite.

Also checks what the types promise callers: precise return types with no casts, and that
soft-deleting through an append-only repository does not type-check.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parent.parent

CALLER = """
from typing import assert_type
from uuid import UUID
from sqlmodel.ext.asyncio.session import AsyncSession
from datalayer import MessageModel, SessionModel
from datalayer.repositories import (
    ExecutionStats, MessageRepository, SessionRepository, TaskExecutionRepository, ToolCallRepository,
    ToolStatistics,
)

async def caller(s: AsyncSession, some_id: UUID) -> None:
    assert_type(await SessionRepository(s).get_by_id(some_id), SessionModel | None)
    assert_type(await SessionRepository(s).get(some_id), SessionModel)
    assert_type(await SessionRepository(s).get_by_user(some_id), list[SessionModel])
    assert_type(await MessageRepository(s).get_result_message(some_id), MessageModel | None)
    assert_type(await MessageRepository(s).append(some_id, message_type="user"), MessageModel)
    assert_type(await ToolCallRepository(s).get_statistics_by_tool(), list[ToolStatistics])
    assert_type(await TaskExecutionRepository(s).get_execution_stats(some_id), ExecutionStats)
    assert_type(await SessionRepository(s).soft_delete(some_id), bool)
"""

APPEND_ONLY_SOFT_DELETE = """
from uuid import UUID
from sqlmodel.ext.asyncio.session import AsyncSession
from datalayer.repositories import MessageRepository

async def caller(s: AsyncSession, some_id: UUID) -> None:
    await MessageRepository(s).soft_delete(some_id)
"""


def _mypy(*args: str) -> tuple[str, int]:
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "mypy.ini"), *args])
    return stdout + stderr, status


@pytest.mark.slow
def test_mypy_strict_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    output, status = _mypy()
    assert status == 0, f"mypy reported problems:\n{output}"


@pytest.mark.slow
def test_pyright_strict_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """datalayer/, factories/ and examples/ ([tool.pyright] in pyproject.toml) have no error."""
    monkeypatch.chdir(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "pyright", "--pythonpath", sys.executable],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"pyright reported problems:\n{done.stdout}{done.stderr}"
    assert "0 errors" in done.stdout


@pytest.mark.slow
def test_callers_get_precise_types_and_append_only_has_no_soft_delete(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(ROOT)
    good = tmp_path / "caller_ok.py"
    good.write_text(CALLER)
    output, status = _mypy(str(good))
    assert status == 0, output
    bad = tmp_path / "caller_bad.py"
    bad.write_text(APPEND_ONLY_SOFT_DELETE)
    output, status = _mypy(str(bad))
    assert status == 1
    assert '"MessageRepository" has no attribute "soft_delete"' in output
