"""polyfactory factories for the datalayer models (install the ``factories`` extra).

- One factory per model (``UserFactory``, ``SessionFactory``, ...): ``build()``,
  ``batch(n)`` and ``rows(n)`` (plain dicts) give valid, plausible entities.
- ``seed_factories(seed)`` makes everything that follows reproducible across processes.
- ``await persist(session, SessionFactory, count=3, **overrides)`` inserts through the
  repositories and creates missing parents (a session gets its user).
- polyfactory's own ``await SessionFactory.create_async()`` / ``create_batch_async(n)`` do the
  same in the current unit of work: the pytest plugin's (``datalayer.pytest_plugin``), or
  the one given to ``with using_session(session):``.
"""

from typing import Any

try:
    import polyfactory as polyfactory  # the alias marks a deliberate, unused import
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "datalayer's factories need polyfactory, which is not installed: "
        "pip install 'sqlmodel-datalayer[factories]'"
    ) from exc

from datalayer.factories.base import ANCHOR, TAGS, TOOL_NAMES, DataFactory, seed_factories
from datalayer.factories.models import (
    HookExecutionFactory,
    MCPServerFactory,
    MessageFactory,
    PermissionDecisionFactory,
    ReportFactory,
    SessionFactory,
    SessionMetricsSnapshotFactory,
    SessionTemplateFactory,
    TaskExecutionFactory,
    TaskFactory,
    ToolCallFactory,
    UserFactory,
    WorkingDirectoryArchiveFactory,
)
from datalayer.factories.persistence import persist, persist_one, using_session

__all__ = [
    "ALL_FACTORIES",
    "ANCHOR",
    "TAGS",
    "TOOL_NAMES",
    "DataFactory",
    "HookExecutionFactory",
    "MCPServerFactory",
    "MessageFactory",
    "PermissionDecisionFactory",
    "ReportFactory",
    "SessionFactory",
    "SessionMetricsSnapshotFactory",
    "SessionTemplateFactory",
    "TaskExecutionFactory",
    "TaskFactory",
    "ToolCallFactory",
    "UserFactory",
    "WorkingDirectoryArchiveFactory",
    "persist",
    "persist_one",
    "seed_factories",
    "using_session",
]

#: Every factory, parents before children (the order of ``datalayer.models.ALL_MODELS``).
ALL_FACTORIES: tuple[type[DataFactory[Any]], ...] = (
    UserFactory,
    SessionFactory,
    MessageFactory,
    ToolCallFactory,
    TaskFactory,
    TaskExecutionFactory,
    ReportFactory,
    MCPServerFactory,
    SessionTemplateFactory,
    HookExecutionFactory,
    PermissionDecisionFactory,
    WorkingDirectoryArchiveFactory,
    SessionMetricsSnapshotFactory,
)
