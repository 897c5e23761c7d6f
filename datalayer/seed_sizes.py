"""How many rows ``datalayer seed`` creates (imports nothing heavy: ``--help`` builds on it)."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["DEMO_SIZES", "SeedSizes"]


@dataclass(frozen=True)
class SeedSizes:
    """How many rows ``seed`` creates (children are per parent)."""

    users: int = 50
    sessions: int = 500
    messages_per_session: int = 6
    tool_calls_per_session: int = 3
    tasks: int = 50
    executions_per_task: int = 4
    reports: int = 50
    templates: int = 20
    mcp_servers: int = 20

    @classmethod
    def field_names(cls) -> list[str]:
        """Return the names of the sizes, in declaration order."""
        return [field.name for field in fields(cls)]


DEMO_SIZES = SeedSizes(
    users=5,
    sessions=20,
    messages_per_session=6,
    tool_calls_per_session=3,
    tasks=6,
    executions_per_task=3,
    reports=6,
    templates=6,
    mcp_servers=6,
)
