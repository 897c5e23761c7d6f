"""The ``datalayer`` command: migrate, seed, stats, demo and its one-line errors, on both backends."""

from __future__ import annotations

import asyncio
import importlib.metadata
import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import col, select

from datalayer import Database, migrate
from datalayer.cli import main
from datalayer.models import ALL_MODELS, MessageModel, SessionModel, UserModel
from datalayer.repositories import Repository
from datalayer.seeding import SeedSizes, seed_database

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
    assert f"from base to {migrate.head()} (head)" in out

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


# -- version, --help, migrate subcommands, hints, read commands, re-seeding, progress -------------


def test_version_is_the_installed_distribution_s(capsys: pytest.CaptureFixture[str]) -> None:
    import datalayer

    installed = importlib.metadata.version("sqlmodel-datalayer")
    assert datalayer.__version__ == installed
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"datalayer {installed} (sqlmodel-datalayer)"


def test_help_imports_neither_sqlalchemy_nor_the_models(tmp_path: Path) -> None:
    """``datalayer --help`` stays fast because the commands import what they need themselves."""
    probe = (
        "import sys\n"
        "from datalayer.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "top = {name.split('.')[0] for name in sys.modules}\n"
        "heavy = sorted(top & {'sqlalchemy', 'sqlmodel', 'alembic', 'rich'})\n"
        "print('HEAVY', heavy, 'models' in str(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "migrate" in result.stdout
    assert "HEAVY [] False" in result.stdout


def printed_revision(out: str) -> str | None:
    """Return the revision a migrate command said the database is at (None for base)."""
    line = out.strip().splitlines()[-1]
    found = re.search(r"(?:\bto|already at) (\w+)(?: \(head\))?[.:]", line) or re.fullmatch(
        r"(\w+)(?: \(head\))?", line
    )
    assert found is not None, out
    return None if found.group(1) == "base" else found.group(1)


def test_every_migrate_command_reports_the_revision_the_database_is_at(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = [
        (["migrate", "current"], None),
        (["migrate"], "0002"),  # bare `migrate` upgrades to head
        (["migrate", "upgrade"], "0002"),  # nothing to do, and it says so
        (["migrate", "downgrade", "-1"], "0001"),
        (["migrate", "downgrade", "-1"], None),
        (["migrate", "downgrade", "base"], None),
        (["migrate", "upgrade", "+1"], "0001"),
        (["migrate", "upgrade", "0002"], "0002"),
        (["migrate", "downgrade", "base"], None),
        (["migrate", "upgrade", "0001"], "0001"),
        (["migrate", "upgrade"], "0002"),
        (["migrate", "current"], "0002"),
    ]
    places = ["before", "between", "after"]
    for number, (command, expected) in enumerate(steps):
        url = ["--database-url", empty_url]
        place = places[number % 3]  # the option is accepted before, inside or after the command
        if place == "before":
            argv = [*url, *command]
        elif place == "between":
            argv = [command[0], *url, *command[1:]]
        else:
            argv = [*command, *url]
        status, out, err = run_cli(capsys, *argv)
        assert (status, err) == (0, ""), argv
        assert printed_revision(out) == expected, (argv, out)
        assert migrate.current(empty_url) == expected, argv  # what it printed is what is there
        if "already" in out:
            assert "nothing to" in out
    # Refused or failing commands change nothing and print no revision on stdout.
    for command in (
        ["migrate", "upgrade", "base"],
        ["migrate", "upgrade", "-1"],
        ["migrate", "downgrade", "head"],
        ["migrate", "downgrade", "-5"],
        ["migrate", "upgrade", "nope"],
        ["migrate", "downgrade", "nope"],
    ):
        status, out, err = run_cli(capsys, *command, "--database-url", empty_url)
        assert_one_error_line(status, err, "revision")
        assert out == ""
        assert migrate.current(empty_url) == "0002", command


def test_downgrade_without_a_revision_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["migrate", "downgrade"])
    assert exit_info.value.code == 2
    assert "REV" in capsys.readouterr().err


def test_history_lists_the_scripts_newest_first(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_cli(capsys, "migrate", "history")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("0001 -> 0002 (head), ")
    assert lines[-1] == "<base> -> 0001, initial schema"
    assert [item.revision for item in migrate.history()] == ["0002", "0001"]


def test_check_exits_1_listing_the_differences(empty_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "migrate", "check", "--database-url", empty_url)
    assert status == 1
    assert f"is at base, the scripts' head is {migrate.head()}" in out

    assert run_cli(capsys, "migrate", "upgrade", "--database-url", empty_url)[0] == 0
    status, out, err = run_cli(capsys, "migrate", "check", "--database-url", empty_url)
    assert (status, err) == (0, "")
    assert "matches the models" in out

    async def drift() -> None:
        engine = create_async_engine(empty_url, poolclass=NullPool)
        async with engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE users ADD COLUMN nickname VARCHAR(20)"))
            await conn.execute(sa.text("DROP INDEX ix_tasks_created_at_id"))
        await engine.dispose()

    asyncio.run(drift())
    status, out, err = run_cli(capsys, "migrate", "check", "--database-url", empty_url)
    assert (status, err) == (1, "")
    assert "does not match the models" in out
    assert "remove_column users.nickname" in out
    assert "add_index ix_tasks_created_at_id on tasks" in out
    assert migrate.current(empty_url) == migrate.head()


def test_read_commands_never_create_a_sqlite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.db"
    url = f"sqlite+aiosqlite:///{path}"
    status, out, _ = run_cli(capsys, "migrate", "current", "--database-url", url)
    assert (status, out.strip()) == (0, "base")
    status, out, _ = run_cli(capsys, "migrate", "check", "--database-url", url)
    assert status == 1
    status, _, err = run_cli(capsys, "stats", "--database-url", url)
    assert_one_error_line(status, err, "no database file at", "nothing was created", "migrate upgrade")
    status, _, err = run_cli(capsys, "seed", *SMALL, "--database-url", url)
    assert_one_error_line(status, err, "no database file at")
    status, out, _ = run_cli(capsys, "migrate", "downgrade", "base", "--database-url", url)
    assert (status, printed_revision(out)) == (0, None)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["stats"], ["seed", *SMALL]])
def test_a_database_without_our_schema_says_to_migrate(
    empty_url: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    if empty_url.startswith("sqlite"):
        Path(empty_url.removeprefix("sqlite+aiosqlite:///")).touch()  # exists, but empty
    status, _, err = run_cli(capsys, *command, "--database-url", empty_url)
    assert_one_error_line(status, err, "SchemaNotReadyError", "run `datalayer migrate upgrade` first")
    assert counts_of_tables(empty_url) == set()


@pytest.mark.parametrize(
    ("missing", "fragments"),
    [
        ("database", ['database "no_such_database" does not exist', "createdb"]),
        ("role", ['role "no_such_role" does not exist', "user or password"]),
    ],
)
@pytest.mark.parametrize("command", [["stats"], ["seed"], ["migrate", "upgrade"], ["migrate", "current"]])
def test_missing_database_or_role_is_named_not_blamed_on_migrations(
    postgres_url: str, missing: str, fragments: list[str], command: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    server = make_url(postgres_url)
    if missing == "database":
        server = server.set(database="no_such_database")
    else:
        server = server.set(username="no_such_role")
    url = server.render_as_string(hide_password=False)
    status, _, err = run_cli(capsys, *command, "--database-url", url)
    assert_one_error_line(status, err, "DatabaseUnavailableError", *fragments)
    assert "migrate` first" not in err


def test_reseeding_with_the_same_seed_is_refused_and_writes_nothing(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "migrate", "--database-url", empty_url)[0] == 0
    assert run_cli(capsys, "seed", *SMALL, "--seed", "7", "--database-url", empty_url)[0] == 0
    before = counts_of(empty_url)
    status, out, err = run_cli(capsys, "seed", *SMALL, "--seed", "7", "--database-url", empty_url)
    assert_one_error_line(status, err, "ConflictError", "already seeded with seed 7", "nothing was written")
    assert out == ""  # not even an empty progress display
    assert counts_of(empty_url) == before
    status, _, err = run_cli(capsys, "seed", *SMALL, "--seed", "8", "--database-url", empty_url)
    assert (status, err) == (0, "")
    assert counts_of(empty_url)["sessions"] == 2 * SMALL_COUNTS["sessions"]


async def test_seed_progress_shows_rows_per_second_and_time_left(db: Database) -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=160)
    sizes = SeedSizes(users=3, sessions=9, tasks=2, reports=2, templates=2, mcp_servers=2)
    counts = await seed_database(db, sizes, seed=3, batch_size=4, console=console)
    assert counts["sessions"] == 9
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.getvalue())
    final = shown.splitlines()[-3:]
    assert re.search(r"users .* 3/3 +[\d,]+ rows/s .* eta", final[0]), final
    assert re.search(r"sessions .* 9/9 +[\d,]+ rows/s .* eta", final[1]), final
    assert re.search(r"other .* 6/6 +[\d,]+ rows/s", final[2]), final
