"""The ``datalayer`` command: migrate, seed, stats, demo and its one-line errors, on both backends."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from datalayer import Database, migrate
from datalayer.cli import main
from datalayer.models import ALL_MODELS, MessageModel, SessionModel, UserModel
from datalayer.repositories import Repository

ROOT = Path(__file__).resolve().parent.parent

SMALL = [
    "--users", "3", "--sessions", "7", "--messages-per-session", "4", "--tool-calls-per-session", "2",
    "--tasks", "2", "--executions-per-task", "2", "--reports", "2", "--templates", "2", "--mcp-servers", "2",
]  # fmt: skip
SMALL_COUNTS = {
    "users": 3,
    "sessions": 7,
    "messages": 28,
    "tool_calls": 14,
    "tasks": 2,
    "task_executions": 4,
    "reports": 2,
    "mcp_servers": 2,
    "session_templates": 2,
    "hook_executions": 7,
    "permission_decisions": 7,
    "session_metrics_snapshots": 7,
}

# Every specialized query the demo must run (the reference's names plus our additions).
DEMO_QUERIES = [
    "SessionRepository.get_by_user", "SessionRepository.get_active_sessions",
    "SessionRepository.count_active_sessions", "SessionRepository.get_by_status",
    "SessionRepository.get_completed_before", "SessionRepository.soft_delete",
    "SessionRepository.update_metrics", "SessionRepository.add_usage",
    "UserRepository.get_by_email", "UserRepository.get_by_username", "UserRepository.update_last_login",
    "UserRepository.email_exists", "UserRepository.username_exists",
    "MessageRepository.get_by_session", "MessageRepository.get_next_sequence_number",
    "MessageRepository.get_result_message", "MessageRepository.append",
    "ToolCallRepository.get_by_tool_use_id", "ToolCallRepository.get_pending_for_permission",
    "ToolCallRepository.update_status", "ToolCallRepository.get_statistics_by_tool",
    "TaskRepository.get_scheduled_tasks", "TaskRepository.get_by_tags",
    "TaskExecutionRepository.get_execution_stats", "ReportRepository.search_content",
    "MCPServerRepository.list_by_user", "SessionTemplateRepository.search_by_tags",
    "SessionTemplateRepository.update_usage_stats", "HookExecutionRepository.get_by_tool_use_id",
    "PermissionDecisionRepository.count_by_decision",
    "WorkingDirectoryArchiveRepository.get_pending_archives",
    "WorkingDirectoryArchiveRepository.claim_pending",
    "SessionMetricsSnapshotRepository.get_snapshots_in_range",
]  # fmt: skip


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``datalayer argv`` in this process; return (exit status, stdout, stderr)."""
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def counts_of(url: str) -> dict[str, int]:
    """Return the number of rows of every table."""

    async def count() -> dict[str, int]:
        async with Database(url) as db, db.session() as session:
            return {
                str(model.__tablename__): await Repository(model, session).count(include_deleted=True)
                for model in ALL_MODELS
            }

    return asyncio.run(count())


def dump_of(url: str, model: Any) -> list[dict[str, Any]]:
    """Return every row of a table, ordered by id, as dicts."""

    async def dump() -> list[dict[str, Any]]:
        async with Database(url) as db, db.session() as session:
            rows = (await session.exec(select(model).order_by(col(model.id)))).all()
            return [row.model_dump() for row in rows]

    return asyncio.run(dump())


def assert_one_error_line(status: int, err: str, *fragments: str) -> None:
    """Assert a failure reported as exactly one line on stderr, without a traceback."""
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("datalayer: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_migrate_seed_stats(empty_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_cli(capsys, "--database-url", empty_url, "migrate")
    assert (status, err) == (0, "")
    assert "from base to 0001 (head)" in out

    status, out, err = run_cli(capsys, "--database-url", empty_url, "seed", *SMALL, "--seed", "11")
    assert (status, err) == (0, "")
    assert "Seeded with seed 11" in out
    counts = counts_of(empty_url)
    for table, expected in SMALL_COUNTS.items():
        assert counts[table] == expected, table
    finished = sum(1 for s in dump_of(empty_url, SessionModel) if s["completed_at"] is not None)
    assert counts["working_directory_archives"] == finished

    messages = dump_of(empty_url, MessageModel)
    by_session: dict[Any, list[int]] = {}
    for message in messages:
        by_session.setdefault(message["session_id"], []).append(message["sequence_number"])
    assert len(by_session) == 7
    assert all(sorted(numbers) == [1, 2, 3, 4] for numbers in by_session.values())

    status, out, err = run_cli(capsys, "--database-url", empty_url, "stats")
    assert (status, err) == (0, "")
    for table, expected in SMALL_COUNTS.items():
        assert re.search(rf"\b{table}\b\s*│\s*{expected}\s*│", out), table
    assert "get_statistics_by_tool" in out
    assert re.search(r"total\s*│\s*\d+", out)


def test_demo_runs_every_specialized_query(empty_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_cli(capsys, "--database-url", empty_url, "demo", "--seed", "5")
    assert (status, err) == (0, "")
    for query in DEMO_QUERIES:
        assert f"{query}(" in out, query
    assert f"Done: {len(DEMO_QUERIES)} queries" in out
    assert counts_of(empty_url)["sessions"] == 20
    # A second demo on the same database works too (new random seed, new rows).
    status, out, err = run_cli(capsys, "--database-url", empty_url, "demo")
    assert (status, err) == (0, "")
    assert counts_of(empty_url)["sessions"] == 40


def test_demo_defaults_to_the_embedded_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATALAYER_DATABASE_URL", raising=False)
    status, out, err = run_cli(capsys, "demo")
    assert (status, err) == (0, "")
    assert "sqlite+aiosqlite:///./datalayer.db" in out
    assert (tmp_path / "datalayer.db").is_file()


def test_environment_variable_picks_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("DATALAYER_DATABASE_URL", url)
    status, _, err = run_cli(capsys, "migrate")
    assert (status, err) == (0, "")
    status, _, err = run_cli(capsys, "seed", *SMALL)
    assert (status, err) == (0, "")
    assert counts_of(url)["users"] == 3


def test_same_seed_gives_identical_rows_in_two_databases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = [f"sqlite+aiosqlite:///{tmp_path / name}" for name in ("a.db", "b.db", "c.db")]
    for url, seed in zip(urls, ("21", "21", "22"), strict=True):
        assert run_cli(capsys, "--database-url", url, "migrate")[0] == 0
        assert run_cli(capsys, "--database-url", url, "seed", *SMALL, "--seed", seed)[0] == 0
    first, second, other = ([dump_of(url, model) for model in (UserModel, SessionModel)] for url in urls)
    assert first == second
    assert first != other


def test_seed_commits_per_batch(empty_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "--database-url", empty_url, "migrate")[0] == 0
    status, _, err = run_cli(capsys, "--database-url", empty_url, "seed", *SMALL, "--batch-size", "2")
    assert (status, err) == (0, "")
    assert counts_of(empty_url)["sessions"] == 7


def test_seed_without_schema_says_to_migrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    status, _, err = run_cli(capsys, "--database-url", url, "seed", *SMALL)
    assert_one_error_line(status, err, "datalayer migrate")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not a url", "InvalidDataError"),
        ("mysql://user@localhost/db", "only SQLite and PostgreSQL"),
        ("postgresql://nobody@127.0.0.1:1/nothing", "is the server running"),
        ("sqlite+aiosqlite:////nonexistent-dir/sub/x.db", "/nonexistent-dir"),
    ],
)
@pytest.mark.parametrize("command", [["migrate"], ["migrate", "check"], ["stats"], ["seed"]])
def test_bad_or_unreachable_database_is_one_line(
    url: str, fragment: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run_cli(capsys, "--database-url", url, *command)
    if command == ["migrate", "check"] and url.startswith("sqlite"):
        # A file that does not exist is a database at base: check reports it (no error, no file).
        assert (status, err) == (1, "")
        assert "is at base" in out
    else:
        assert_one_error_line(status, err, fragment)
    assert "Seeded" not in out
    assert "datalayer migrate` first" not in err  # migrating would not help here
    assert not Path("/nonexistent-dir").exists()


def test_unknown_revision_is_one_line(empty_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_cli(capsys, "--database-url", empty_url, "migrate", "upgrade", "nope")
    assert_one_error_line(status, err, "nope", "datalayer migrate history")
    assert counts_of_tables(empty_url) <= {migrate.VERSION_TABLE}  # no schema table was created


def counts_of_tables(url: str) -> set[str]:
    """Return the names of the tables of the database."""

    async def names() -> set[str]:
        async with Database(url) as db, db.engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))

    return asyncio.run(names())


def test_python_dash_m_and_console_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "datalayer", "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0
    for command in ("migrate", "seed", "stats", "demo"):
        assert command in result.stdout

    script = Path(sys.executable).with_name("datalayer")
    assert script.is_file()
    url = f"sqlite+aiosqlite:///{tmp_path / 'sub.db'}"
    result = subprocess.run([str(script), "--database-url", url, "migrate"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        [str(script), "--database-url", url, "seed", *SMALL, "--seed", "1"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert counts_of(url)["sessions"] == 7

    result = subprocess.run(
        [str(script), "migrate", "upgrade", "nope", "--database-url", url], capture_output=True, text=True
    )
    assert_one_error_line(result.returncode, result.stderr, "nope")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["seed", "--sessions", "-1"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main([])
