"""Every specialized query is served by an index on PostgreSQL (no sequential scan).

The tables are filled with tens of thousands of rows (generate_series, in SQL), vacuumed
and analyzed, so the planner prefers an index wherever one fits. Each repository method
is then called with SQL capture on, and EXPLAIN is run on every statement it sent.

The plans are made deterministic: ANALYZE reads every row (a statistics target whose sample,
300 x target rows, exceeds the largest table), so the statistics do not depend on ANALYZE's
random sample, and EXPLAIN runs with ``enable_seqscan = off``, so "Seq Scan" appears only when
no index can serve the statement. Without that setting, the whole-table aggregate of
``get_statistics_by_tool()`` flipped between an Index Only Scan and a Seq Scan from run to run:
its index-only plan is cheaper only while the visibility map marks the pages all-visible, and
VACUUM right after the fill did not always set it (measured: relallvisible 0 of 1,312 pages in
about 1 run of 3, with no concurrent transaction); with no visible pages a Seq Scan is the
planner's right answer, so the check was testing VACUUM's timing, not our indexes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database
from datalayer.models import SessionTemplateModel, metadata
from datalayer.repositories import (
    HookExecutionRepository,
    MCPServerRepository,
    MessageRepository,
    PermissionDecisionRepository,
    ReportRepository,
    SessionMetricsSnapshotRepository,
    SessionRepository,
    SessionTemplateRepository,
    TaskExecutionRepository,
    TaskRepository,
    ToolCallRepository,
    UserRepository,
    WorkingDirectoryArchiveRepository,
)

# Deterministic ids: md5 of a label, as a uuid, so children can point at parents in SQL.
_FILL = [
    """INSERT INTO users (id, created_at, updated_at, email, username, is_active)
       SELECT md5('u' || i)::uuid, now() - i * interval '1 minute', now(),
              'user' || i || '@example.com', 'user' || i, true
       FROM generate_series(1, 2000) i""",
    """INSERT INTO sessions (id, created_at, updated_at, deleted_at, user_id, mode, status, sdk_options,
              completed_at, version, total_messages, total_tool_calls, total_cost_usd,
              api_input_tokens, api_output_tokens, api_cache_creation_tokens, api_cache_read_tokens)
       SELECT md5('s' || i)::uuid, now() - i * interval '1 second', now(),
              CASE WHEN i % 50 = 0 THEN now() END, md5('u' || (i % 2000 + 1))::uuid, 'interactive',
              (ARRAY['created', 'active', 'waiting', 'processing', 'paused', 'completed', 'failed',
                     'terminated'])[i % 8 + 1],
              '{}'::jsonb, now() - i * interval '1 second', 1, 0, 0, 0, 0, 0, 0, 0
       FROM generate_series(1, 40000) i""",
    """INSERT INTO messages (id, created_at, session_id, sequence_number, message_type, content)
       SELECT gen_random_uuid(), now() - i * interval '1 second', md5('s' || (i % 40000 + 1))::uuid,
              i / 40000 + 1, CASE WHEN i % 10 = 0 THEN 'result' ELSE 'assistant' END, '{}'::jsonb
       FROM generate_series(1, 80000) i""",
    """INSERT INTO tool_calls (id, created_at, updated_at, session_id, tool_use_id, tool_name, tool_input,
              status, permission_decision, is_error, duration_ms)
       SELECT md5('t' || i)::uuid, now() - i * interval '1 second', now(), md5('s' || (i % 40000 + 1))::uuid,
              'toolu_' || i, 'tool' || (i % 20), '{}'::jsonb,
              CASE WHEN i % 200 = 0 THEN 'pending' WHEN i % 7 = 0 THEN 'error' ELSE 'success' END,
              CASE WHEN i % 200 = 0 THEN NULL ELSE 'allow' END, false, i % 1000
       FROM generate_series(1, 80000) i""",
    """INSERT INTO tasks (id, created_at, updated_at, user_id, name, prompt_template, sdk_options, tags,
              is_scheduled, schedule_enabled)
       SELECT md5('k' || i)::uuid, now() - i * interval '1 second', now(), md5('u' || (i % 2000 + 1))::uuid,
              'task' || i, 'p', '{}'::jsonb, ARRAY['tag' || (i % 1000), 'grp' || (i % 300)],
              i % 200 = 0, i % 400 = 0
       FROM generate_series(1, 40000) i""",
    """INSERT INTO task_executions (id, created_at, updated_at, task_id, status, duration_seconds)
       SELECT gen_random_uuid(), now(), now(), md5('k' || (i % 40000 + 1))::uuid,
              (ARRAY['pending','running','completed','failed','cancelled'])[i % 5 + 1], i % 60
       FROM generate_series(1, 80000) i""",
    """INSERT INTO reports (id, created_at, updated_at, user_id, title, report_type, content, tags)
       SELECT gen_random_uuid(), now() - i * interval '1 second', now(), md5('u' || (i % 2000 + 1))::uuid,
              'r' || i, 'summary', jsonb_build_object('text', 'report ' || i, 'n', i), ARRAY[]::varchar[]
       FROM generate_series(1, 40000) i""",
    """INSERT INTO mcp_servers (id, created_at, updated_at, user_id, name, server_type, config, is_enabled)
       SELECT gen_random_uuid(), now(), now(),
              CASE WHEN i % 500 = 0 THEN NULL ELSE md5('u' || (i % 2000 + 1))::uuid END,
              'srv' || i, 'stdio', '{}'::jsonb, true
       FROM generate_series(1, 40000) i""",
    """INSERT INTO session_templates (id, created_at, updated_at, user_id, name, sdk_options, tags,
              is_public, is_organization_shared, usage_count)
       SELECT md5('p' || i)::uuid, now() - i * interval '1 second', now(), md5('u' || (i % 2000 + 1))::uuid,
              'tpl' || i, '{}'::jsonb, ARRAY['tag' || (i % 1000), 'grp' || (i % 300)],
              i % 10 = 0, i % 15 = 0, i % 100
       FROM generate_series(1, 40000) i""",
    """INSERT INTO hook_executions (id, created_at, session_id, tool_use_id, hook_type, input_data,
              continue_execution)
       SELECT gen_random_uuid(), now() - i * interval '1 second', md5('s' || (i % 40000 + 1))::uuid,
              'toolu_' || (i % 40000), 'pre_tool_use', '{}'::jsonb, true
       FROM generate_series(1, 80000) i""",
    """INSERT INTO permission_decisions (id, created_at, session_id, tool_name, decision, input_data)
       SELECT gen_random_uuid(), now(), md5('s' || (i % 40000 + 1))::uuid, 'Bash',
              CASE WHEN i % 3 = 0 THEN 'deny' ELSE 'allow' END, '{}'::jsonb
       FROM generate_series(1, 80000) i""",
    """INSERT INTO working_directory_archives (id, created_at, updated_at, session_id, status, compression)
       SELECT gen_random_uuid(), now() - i * interval '1 second', now(), md5('s' || (i % 40000 + 1))::uuid,
              CASE WHEN i % 200 = 0 THEN 'pending' ELSE 'completed' END, 'gzip'
       FROM generate_series(1, 40000) i""",
    """INSERT INTO session_metrics_snapshots (id, created_at, session_id, total_messages, total_tool_calls,
              total_cost_usd, api_input_tokens, api_output_tokens, api_cache_creation_tokens,
              api_cache_read_tokens)
       SELECT gen_random_uuid(), timestamptz '2026-01-01' + i * interval '1 minute',
              md5('s' || (i % 40000 + 1))::uuid, i, 0, 0, 0, 0, 0, 0
       FROM generate_series(1, 80000) i""",
]


def uid(label: str) -> UUID:
    """Return the uuid the fill SQL gives to ``label`` (md5 of it)."""
    import hashlib

    return UUID(hashlib.md5(label.encode()).hexdigest())


@pytest.fixture(scope="module")
async def big_db(postgres_url: str) -> AsyncIterator[Database]:
    """A separate PostgreSQL database with large tables, vacuumed and analyzed."""
    admin = Database(postgres_url)
    async with admin.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("DROP DATABASE IF EXISTS datalayer_explain")
        await conn.exec_driver_sql("CREATE DATABASE datalayer_explain")
    await admin.dispose()
    db = Database(postgres_url.rsplit("/", 1)[0] + "/datalayer_explain")
    await db.create_all()
    async with db.engine.begin() as conn:
        for statement in _FILL:
            await conn.execute(sa.text(statement))
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        # A sample of 300 x 1000 rows covers every table whole: the same statistics every run.
        await conn.exec_driver_sql("SET default_statistics_target = 1000")
        for table in metadata.sorted_tables:
            await conn.exec_driver_sql(f"VACUUM ANALYZE {table.name}")
    yield db
    await db.dispose()


Call = Callable[[AsyncSession], Awaitable[object]]
T0 = datetime(2026, 1, 2, tzinfo=UTC)

QUERIES: dict[str, Call] = {
    "SessionRepository.get_by_user": lambda s: SessionRepository(s).get_by_user(uid("u7")),
    "SessionRepository.get_active_sessions": lambda s: SessionRepository(s).get_active_sessions(uid("u7")),
    "SessionRepository.count_active_sessions": lambda s: SessionRepository(s).count_active_sessions(
        uid("u7")
    ),
    "SessionRepository.get_by_status": lambda s: SessionRepository(s).get_by_status("paused", limit=10),
    "SessionRepository.get_completed_before": lambda s: SessionRepository(s).get_completed_before(
        datetime(2000, 1, 1, tzinfo=UTC)
    ),
    "SessionRepository.update_metrics": lambda s: SessionRepository(s).update_metrics(
        uid("s5"), total_messages=1
    ),
    "SessionRepository.add_usage": lambda s: SessionRepository(s).add_usage(uid("s5"), total_messages=1),
    "SessionRepository.soft_delete": lambda s: SessionRepository(s).soft_delete(uid("s6")),
    "UserRepository.get_by_email": lambda s: UserRepository(s).get_by_email("USER5@example.com"),
    "UserRepository.get_by_username": lambda s: UserRepository(s).get_by_username("user5"),
    "UserRepository.update_last_login": lambda s: UserRepository(s).update_last_login(uid("u5")),
    "UserRepository.email_exists": lambda s: UserRepository(s).email_exists("user9@example.com"),
    "UserRepository.username_exists": lambda s: UserRepository(s).username_exists("user9"),
    "MessageRepository.get_by_session": lambda s: MessageRepository(s).get_by_session(uid("s3")),
    "MessageRepository.get_next_sequence_number": lambda s: MessageRepository(s).get_next_sequence_number(
        uid("s3")
    ),
    "MessageRepository.get_result_message": lambda s: MessageRepository(s).get_result_message(uid("s3")),
    "MessageRepository.append": lambda s: MessageRepository(s).append(uid("s3"), message_type="user"),
    "ToolCallRepository.get_by_tool_use_id": lambda s: ToolCallRepository(s).get_by_tool_use_id("toolu_5"),
    "ToolCallRepository.get_pending_for_permission": lambda s: ToolCallRepository(
        s
    ).get_pending_for_permission(),
    "ToolCallRepository.get_pending_for_permission(session)": lambda s: ToolCallRepository(
        s
    ).get_pending_for_permission(uid("s200")),
    "ToolCallRepository.update_status": lambda s: ToolCallRepository(s).update_status(uid("t5"), "running"),
    "ToolCallRepository.get_statistics_by_tool(session)": lambda s: ToolCallRepository(
        s
    ).get_statistics_by_tool(uid("s3")),
    "ToolCallRepository.get_statistics_by_tool": lambda s: ToolCallRepository(s).get_statistics_by_tool(),
    "TaskRepository.get_scheduled_tasks": lambda s: TaskRepository(s).get_scheduled_tasks(),
    "TaskRepository.get_scheduled_tasks(all)": lambda s: TaskRepository(s).get_scheduled_tasks(False),
    "TaskRepository.get_by_tags": lambda s: TaskRepository(s).get_by_tags(["tag5", "tag6"]),
    "TaskRepository.get_by_tags(user)": lambda s: TaskRepository(s).get_by_tags(["tag5"], user_id=uid("u5")),
    "TaskExecutionRepository.get_execution_stats": lambda s: TaskExecutionRepository(s).get_execution_stats(
        uid("k5")
    ),
    "ReportRepository.search_content": lambda s: ReportRepository(s).search_content("report 5"),
    "ReportRepository.search_content(user)": lambda s: ReportRepository(s).search_content(
        "report 5", user_id=uid("u6")
    ),
    "MCPServerRepository.list_by_user": lambda s: MCPServerRepository(s).list_by_user(uid("u5")),
    "MCPServerRepository.list_by_user(own)": lambda s: MCPServerRepository(s).list_by_user(uid("u5"), False),
    "SessionTemplateRepository.search_by_tags": lambda s: SessionTemplateRepository(s).search_by_tags(
        ["tag5", "tag6"]
    ),
    "SessionTemplateRepository.search_by_tags(user)": lambda s: SessionTemplateRepository(s).search_by_tags(
        ["tag5"], user_id=uid("u5")
    ),
    "SessionTemplateRepository.update_usage_stats": lambda s: SessionTemplateRepository(s).update_usage_stats(
        uid("p5")
    ),
    "HookExecutionRepository.get_by_tool_use_id": lambda s: HookExecutionRepository(s).get_by_tool_use_id(
        "toolu_5"
    ),
    "PermissionDecisionRepository.count_by_decision": lambda s: PermissionDecisionRepository(
        s
    ).count_by_decision(uid("s5"), "deny"),
    "WorkingDirectoryArchiveRepository.get_pending_archives": lambda s: WorkingDirectoryArchiveRepository(
        s
    ).get_pending_archives(),
    "WorkingDirectoryArchiveRepository.claim_pending": lambda s: WorkingDirectoryArchiveRepository(
        s
    ).claim_pending(5),
    "SessionMetricsSnapshotRepository.get_snapshots_in_range": lambda s: SessionMetricsSnapshotRepository(
        s
    ).get_snapshots_in_range(uid("s5"), T0, T0.replace(month=3)),
}

_SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_specialized_query_uses_an_index(big_db: Database, name: str) -> None:
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")):
            captured.append((statement, parameters))

    event.listen(big_db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with big_db.session() as s:
            await QUERIES[name](s)
            await s.rollback()  # leave the data as it was for the other queries
    finally:
        event.remove(big_db.engine.sync_engine, "before_cursor_execute", capture)
    assert captured, f"{name} sent no statement"
    async with big_db.engine.connect() as conn:
        # A disabled seq scan is still chosen when no index can answer: the check stays strict.
        await conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in captured:
            plan = (await conn.exec_driver_sql("EXPLAIN " + statement, parameters)).scalars().all()
            text = "\n".join(plan)
            assert not _SEQ_SCAN.search(text), f"{name} scans a whole table:\n{statement}\n{text}"


# -- rows examined, not only "no Seq Scan" ---------------------------------------------------

# 60,000 more templates, all tagged 'common': 300 public, 30 of user u5, the rest private to
# other users, and more used than the fill's, so a plan that walks usage order with an OR
# over owner/public/shared would read (and discard) about 20,000 private rows for one page.
_COMMON_TEMPLATES = """
INSERT INTO session_templates (id, created_at, updated_at, user_id, name, sdk_options, tags,
       is_public, is_organization_shared, usage_count)
SELECT md5('common' || i)::uuid, now() - i * interval '1 second', now(),
       md5('u' || (i % 2000 + 1))::uuid, 'common' || i, '{}'::jsonb, ARRAY['common', 'x' || (i % 50)],
       i % 200 = 0, false, 1000 + i % 5000
FROM generate_series(1, 60000) i
"""
_SCANS = ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan")


def rows_examined(plan: dict[str, Any]) -> int:
    """Return the rows every scan node of an EXPLAIN ANALYZE plan read: returned plus discarded."""
    loops = int(plan.get("Actual Loops", 1))
    own = 0
    if plan["Node Type"] in _SCANS:
        kept = int(plan.get("Actual Rows", 0))
        removed = int(plan.get("Rows Removed by Filter", 0)) + int(
            plan.get("Rows Removed by Index Recheck", 0)
        )
        own = (kept + removed) * loops
    return own + sum(rows_examined(child) for child in plan.get("Plans", []))


SEARCHES: dict[str, Callable[[AsyncSession], Awaitable[list[SessionTemplateModel]]]] = {
    "search_by_tags(user)": lambda s: SessionTemplateRepository(s).search_by_tags(
        ["common"], user_id=uid("u5")
    ),
    "search_by_tags(user, page 3)": lambda s: SessionTemplateRepository(s).search_by_tags(
        ["common", "nothing"], user_id=uid("u5"), skip=200
    ),
    "search_by_tags": lambda s: SessionTemplateRepository(s).search_by_tags(["common"]),
}


@pytest.mark.parametrize("name", sorted(SEARCHES))
async def test_search_by_tags_reads_about_one_page_of_rows(big_db: Database, name: str) -> None:
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    async with big_db.engine.connect() as conn:
        await conn.begin()
        await conn.exec_driver_sql(_COMMON_TEMPLATES)
        await conn.exec_driver_sql("ANALYZE session_templates")
        event.listen(big_db.engine.sync_engine, "before_cursor_execute", capture)
        try:
            async with AsyncSession(bind=conn, join_transaction_mode="create_savepoint") as s:
                found = await SEARCHES[name](s)
        finally:
            event.remove(big_db.engine.sync_engine, "before_cursor_execute", capture)
        assert len(found) == 100  # a full page: the bound below is not met by returning nothing
        assert len(captured) == 1
        statement, parameters = captured[0]
        explained = await conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
        plan = explained.scalar_one()[0]["Plan"]
        await conn.rollback()
    examined = rows_examined(plan)
    # One page is 100 rows (plus the skipped 200, the owner's 30 and the fill's few matches):
    # bounded by the page, not by the 100,000 templates in the table.
    assert examined <= 1_500, f"{name} read {examined} rows for one page:\n{statement}\n{plan}"
