"""Security: no value is formatted into SQL or JSON text; passwords never leak.

The scanner walks the AST of every module of ``datalayer/`` and reports any string built
by formatting (f-strings, ``%``, ``.format``, ``+``, ``join``) that flows into a SQL or
JSON text sink (``text()``, ``literal_column()``, ``column()``, ``.op()``,
``exec_driver_sql()``, ``execute()``, ``json.loads()``), directly or through a variable.
Its own positive and negative examples are tested too, so an empty result means something.
"""

from __future__ import annotations

import ast
import logging
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

import datalayer
from datalayer import Database
from datalayer.database import ENV_VAR, resolve_url
from datalayer.errors import DatabaseUnavailableError, DataLayerError
from datalayer.models import UserModel
from datalayer.repositories import Repository
from datalayer.testing import COUNTS, free_port
from tests.helpers import make_user

PACKAGE = Path(datalayer.__file__).parent
SINKS = frozenset(
    {
        "text",
        "literal_column",
        "column",
        "op",
        "exec_driver_sql",
        "execute",
        "executemany",
        "executescript",
        "loads",
        "TextClause",
    }
)
SECTION = "security scan (tests/test_security.py)"
SECRET = "hunter2-Secret"


@dataclass(frozen=True)
class Hit:
    """A formatted string flowing into a sink."""

    path: str
    line: int
    sink: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: formatted string passed to {self.sink}()"


def _is_str_constant(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_formatted(node: ast.AST, tainted: set[str]) -> bool:
    """Return True if ``node`` builds a string by formatting (or names one that was)."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.Name):
        return node.id in tainted
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Mod):
            return _is_str_constant(node.left) or _is_formatted(node.left, tainted)
        if isinstance(node.op, ast.Add):
            sides = (node.left, node.right)
            if all(_is_str_constant(side) for side in sides):
                return False  # "a" "b" split over lines: a constant
            return any(_is_str_constant(s) or _is_formatted(s, tainted) for s in sides)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ("format", "format_map", "join", "replace")
    if isinstance(node, ast.IfExp):
        return _is_formatted(node.body, tainted) or _is_formatted(node.orelse, tainted)
    return False


def _sink_name(call: ast.Call) -> str | None:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    return name if name in SINKS else None


def scan_source(source: str, path: str = "<string>") -> list[Hit]:
    """Return every place where a formatted string flows into a SQL or JSON text sink."""
    tree = ast.parse(source)
    tainted: set[str] = set()
    # Two passes so that an assignment after its use in the file is still seen.
    for _ in range(2):
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                formatted = _is_formatted(node.value, tainted) or (
                    isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add | ast.Mod)
                )
                if formatted:
                    tainted.update(t.id for t in targets if isinstance(t, ast.Name))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (sink := _sink_name(node)) is not None:
            arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
            if any(_is_formatted(argument, tainted) for argument in arguments):
                hits.append(Hit(path, node.lineno, sink))
    return hits


def test_package_formats_no_values_into_sql_or_json() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    hits = [hit for file in files for hit in scan_source(file.read_text(), str(file.relative_to(PACKAGE)))]
    COUNTS.add(SECTION, "modules_scanned", len(files))
    COUNTS.add(SECTION, "hits", len(hits))
    assert not hits, "\n".join(map(str, hits))


BAD_SNIPPETS = [
    "sa.text(f\"SELECT * FROM users WHERE name = '{name}'\")",
    "sa.text(\"SELECT * FROM users WHERE name = '%s'\" % name)",
    "sa.text(\"SELECT * FROM users WHERE name = '{}'\".format(name))",
    'text("SELECT * FROM t WHERE x = " + value)',
    'conn.exec_driver_sql(f"SET search_path = {schema}")',
    'await session.execute(sa.text("DELETE FROM t WHERE id = " + str(key)))',
    'col.op(f"{operator}")(value)',
    "sa.literal_column(f\"'{value}'\")",
    'sa.column("x" + suffix)',
    'json.loads(f\'{{"text": "{needle}"}}\')',
    'json.loads(\'{"text": "%s"}\' % needle)',
    'query = f"SELECT {field} FROM t"\nsa.text(query)',
    'query = "SELECT * FROM t WHERE "\nquery += condition\nconn.execute(query)',
    'sql = " AND ".join(parts)\ncursor.execute(sql)',
    'cursor.execute(sql="DROP " + name)',
]

GOOD_SNIPPETS = [
    'sa.text("deleted_at IS NULL")',
    'sa.text("SELECT * FROM t WHERE name = :name").bindparams(name=name)',
    'conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")',
    'cursor.execute("PRAGMA foreign_keys=ON")',
    'column.op("@>")(needle)',
    "await session.execute(statement)",
    'sa.text("SELECT 1 "\n        "FROM t")',
    'message = f"user {name}"\nlogger.info(message)',
]


@pytest.mark.parametrize("snippet", BAD_SNIPPETS)
def test_scanner_finds_formatted_sql(snippet: str) -> None:
    COUNTS.add(SECTION, "scanner_self_checks")
    assert scan_source(snippet), snippet


@pytest.mark.parametrize("snippet", GOOD_SNIPPETS)
def test_scanner_accepts_bound_parameters(snippet: str) -> None:
    COUNTS.add(SECTION, "scanner_self_checks")
    assert scan_source(snippet) == [], snippet


def _everything_said(error: BaseException) -> str:
    """Return the message, repr and formatted traceback of an error and its whole cause chain."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


async def test_password_absent_from_repr_errors_and_logs_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"postgresql://admin:{SECRET}@127.0.0.1:{free_port()}/app"
    caplog.set_level(logging.DEBUG)
    async with Database(url, echo=True, connect_timeout=2) as db:
        shown = [repr(db), str(db.url), repr(db.url), repr(db.engine), str(db.engine.url)]
        with pytest.raises(DatabaseUnavailableError) as caught:
            async with db.session() as s:
                await Repository(UserModel, s).count()
    shown.append(_everything_said(caught.value))
    for text in [*shown, caplog.text]:
        assert SECRET not in text
    COUNTS.add(SECTION, "password_leak_checks", len(shown) + 1)


async def test_password_absent_with_a_real_server(
    caplog: pytest.LogCaptureFixture, postgres_url: str
) -> None:
    # The throwaway server trusts local connections, so a password in the URL is simply
    # not asked for: the connection works and the password must still appear nowhere.
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(username="postgres", password=SECRET)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)
    shown: list[str] = []
    async with Database(url, echo=True, replica_url=url) as db:
        shown += [repr(db), str(db.url), repr(db.replica_url)]
        await db.create_all()
        async with db.session() as s:
            await make_user(s, username="leak-check", email="leak@example.com")
        with pytest.raises(DataLayerError) as caught:
            async with db.session() as s:
                await make_user(s, username="leak-check", email="leak@example.com")
        shown.append(_everything_said(caught.value))
        missing = url.set(database="no_such_database")
        async with Database(missing, echo=True, connect_timeout=5) as other:
            with pytest.raises(DataLayerError) as no_db:
                async with other.session() as s:
                    await Repository(UserModel, s).count()
            shown.append(_everything_said(no_db.value))
        async with db.session() as s:
            await Repository(UserModel, s).delete((await Repository(UserModel, s).get_all())[0].id)
    for text in [*shown, caplog.text]:
        assert SECRET not in text
    assert "leak-check" in caplog.text  # the log was really captured
    COUNTS.add(SECTION, "password_leak_checks", len(shown) + 1)


def test_password_absent_from_url_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in [f"mysql://admin:{SECRET}@h/db", f"oracle+cx://u:{SECRET}@h:1/x"]:
        with pytest.raises(DataLayerError) as caught:
            resolve_url(bad)
        assert SECRET not in _everything_said(caught.value)
    monkeypatch.setenv(ENV_VAR, f"mssql://u:{SECRET}@h/db")
    with pytest.raises(DataLayerError) as from_env:
        Database()
    assert SECRET not in _everything_said(from_env.value)
    COUNTS.add(SECTION, "password_leak_checks", 3)
