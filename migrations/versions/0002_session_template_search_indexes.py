"""session template search indexes

Indexes ordered like ``search_by_tags`` (usage_count, created_at, id), for its three
shapes: every live template, one user's own, and the public or organization-shared ones.
They replace ``ix_session_templates_usage_live`` (usage_count, id), which left the
created_at tie-break to a sort.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "deleted_at IS NULL"


def upgrade() -> None:
    """Upgrade the schema."""
    op.drop_index(
        "ix_session_templates_usage_live",
        table_name="session_templates",
        postgresql_where=sa.text(_LIVE),
        sqlite_where=sa.text(_LIVE),
    )
    op.create_index(
        "ix_session_templates_usage_created_live",
        "session_templates",
        ["usage_count", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text(_LIVE),
        sqlite_where=sa.text(_LIVE),
    )
    op.create_index(
        "ix_session_templates_user_usage_live",
        "session_templates",
        ["user_id", "usage_count", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text(_LIVE),
        sqlite_where=sa.text(_LIVE),
    )
    op.create_index(
        "ix_session_templates_shared_usage_live",
        "session_templates",
        ["usage_count", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text("(is_public OR is_organization_shared) AND deleted_at IS NULL"),
        sqlite_where=sa.text("(is_public = 1 OR is_organization_shared = 1) AND deleted_at IS NULL"),
    )


def downgrade() -> None:
    """Downgrade the schema."""
    op.drop_index("ix_session_templates_shared_usage_live", table_name="session_templates")
    op.drop_index("ix_session_templates_user_usage_live", table_name="session_templates")
    op.drop_index("ix_session_templates_usage_created_live", table_name="session_templates")
    op.create_index(
        "ix_session_templates_usage_live",
        "session_templates",
        ["usage_count", "id"],
        unique=False,
        postgresql_where=sa.text(_LIVE),
        sqlite_where=sa.text(_LIVE),
    )
