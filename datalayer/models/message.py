"""The ``messages`` table."""

from typing import TYPE_CHECKING, Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import Field, Relationship

from datalayer.models.base import EntityModel
from datalayer.models.enums import MessageType
from datalayer.types import JSONDict, enum_type

if TYPE_CHECKING:
    from datalayer.models.session import SessionModel

__all__ = ["MessageModel"]

_RESULT = sa.text("message_type = 'result'")


class MessageModel(EntityModel, table=True):
    """One message of a session; ``sequence_number`` is unique and gap-free per session."""

    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "sequence_number"),
        sa.Index(
            "ix_messages_session_result",
            "session_id",
            "created_at",
            "id",
            postgresql_where=_RESULT,
            sqlite_where=_RESULT,
        ),
        sa.Index("ix_messages_created_at_id", "created_at", "id"),
    )

    session_id: UUID = Field(foreign_key="sessions.id", ondelete="CASCADE")
    sequence_number: int = Field(ge=1, le=2**31 - 1)
    message_type: MessageType = Field(sa_type=enum_type(MessageType))
    content: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict, nullable=False)

    session: "SessionModel" = Relationship(
        back_populates="messages", sa_relationship_kwargs={"lazy": "raise"}
    )
