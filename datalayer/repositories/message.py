"""``MessageRepository``: queries of the ``messages`` table."""

from __future__ import annotations

from typing import Unpack
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select

from datalayer.errors import InvalidDataError, translate_errors
from datalayer.models import MessageModel, MessageType, SessionModel
from datalayer.models.inputs import AppendedMessage
from datalayer.repositories import params
from datalayer.repositories.base import DEFAULT_LIMIT
from datalayer.repositories.writes import MessageRepositoryBase

__all__ = ["MessageRepository"]


class MessageRepository(MessageRepositoryBase):
    """Messages of a session, numbered 1, 2, 3, ... by ``sequence_number``."""

    model_type = MessageModel

    async def get_by_session(
        self, session_id: UUID, skip: int = 0, limit: int = DEFAULT_LIMIT
    ) -> list[MessageModel]:
        """Return a session's messages in sequence order."""
        return await self._page(
            col(MessageModel.session_id) == params.identifier("session_id", session_id),
            order_by=[col(MessageModel.sequence_number)],
            skip=skip,
            limit=limit,
        )

    async def get_next_sequence_number(self, session_id: UUID) -> int:
        """Return the number the next message of the session would get (last + 1).

        Read-only and therefore racy between writers: to add a message use :meth:`append`,
        which assigns the number itself.
        """
        statement = select(sa.func.coalesce(sa.func.max(col(MessageModel.sequence_number)), 0) + 1).where(
            col(MessageModel.session_id) == params.identifier("session_id", session_id)
        )
        with translate_errors():
            return int((await self.session.exec(statement)).one())

    async def get_result_message(self, session_id: UUID) -> MessageModel | None:
        """Return the session's latest message of type ``result``, or None."""
        statement = (
            select(MessageModel)
            .where(
                col(MessageModel.session_id) == params.identifier("session_id", session_id),
                col(MessageModel.message_type) == params.fixed(MessageType.RESULT),
            )
            .order_by(*self._newest_first())
        )
        return await self._first(statement)

    async def append(self, session_id: UUID, **values: Unpack[AppendedMessage]) -> MessageModel:
        """Insert a message as the session's next one and return it; correct under concurrent writers.

        The parent session row is locked (``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL;
        SQLite write transactions are already exclusive), so appends to one session are
        serialized and numbers come out 1, 2, 3, ... with no gaps or duplicates.
        """
        key = params.identifier("session_id", session_id)
        given: dict[str, object] = dict(values)
        for field in ("session_id", "sequence_number"):
            if field in given:  # typed out, but a caller may pass **some_dict
                raise InvalidDataError.for_field(field, given[field], "is set by append")
        # Validate before taking the lock, so bad input writes nothing and blocks nobody.
        self._validator.row({**given, "session_id": key, "sequence_number": 1})
        lock = select(SessionModel.id).where(col(SessionModel.id) == key).with_for_update(key_share=True)
        with translate_errors():
            await self.session.exec(lock)
        number = await self.get_next_sequence_number(key)
        return await self._create({**given, "session_id": key, "sequence_number": number})
