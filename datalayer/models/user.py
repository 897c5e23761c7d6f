"""The ``users`` table."""

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlmodel import Field, Relationship

from datalayer.models.base import SoftDeleteModel, partial_index

if TYPE_CHECKING:
    from datalayer.models.session import SessionModel
    from datalayer.models.task import TaskModel

__all__ = ["UserModel"]


class UserModel(SoftDeleteModel, table=True):
    """A person using the platform; email and username are unique among non-deleted users."""

    __tablename__: ClassVar[Any] = "users"
    __table_args__ = (
        # Case-insensitive email uniqueness, only among rows that are not soft-deleted.
        partial_index(
            "uq_users_lower_email_active",
            sa.text("lower(email)"),
            unique=True,
        ),
        partial_index(
            "uq_users_username_active",
            "username",
            unique=True,
        ),
        sa.Index("ix_users_created_at_id", "created_at", "id"),
    )

    email: str = Field(max_length=320, min_length=3)
    username: str = Field(max_length=150, min_length=1)
    full_name: str | None = Field(default=None, max_length=255)
    is_active: bool = Field(default=True)
    last_login_at: datetime | None = Field(default=None)

    sessions: Mapped[list["SessionModel"]] = Relationship(
        back_populates="user", sa_relationship_kwargs={"lazy": "raise", "passive_deletes": True}
    )
    tasks: Mapped[list["TaskModel"]] = Relationship(
        back_populates="user", sa_relationship_kwargs={"lazy": "raise", "passive_deletes": True}
    )
