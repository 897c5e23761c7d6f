"""The ``messages`` table."""

from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlmodel import Field, Relationship

from datalayer.models.base import EntityModel, partial_index
from datalayer.models.enums import MessageType
from datalayer.types import JSONDict, enum_type

if TYPE_CHECKING:
    from datalayer.models.session import SessionModel

__all__ = ["MessageModel"]


class MessageModel(EntityModel, table=True):
    """One message of a session; ``sequence_number`` is unique and gap-free per session."""

    __tablename__: ClassVar[Any] = "messages"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "sequence_number"),
        partial_index(
            "ix_messages_session_result",
            "session_id",
            "created_at",
            "id",
            where="message_type = 'result'",
        ),
        sa.Index("ix_messages_created_at_id", "created_at", "id"),
    )

    session_id: UUID = Field(foreign_key="sessions.id", ondelete="CASCADE")
    sequence_number: int = Field(ge=1, le=2**31 - 1)
    message_type: MessageType = Field(sa_type=enum_type(MessageType))
    content: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict, nullable=False)

    session: Mapped["SessionModel"] = Relationship(
        back_populates="messages", sa_relationship_kwargs={"lazy": "raise"}
    )
