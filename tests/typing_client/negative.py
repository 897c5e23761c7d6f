"""Mistakes both type checkers must report, each on the line marked ``# expect-error``."""

from __future__ import annotations

from uuid import UUID

from sqlmodel import col

from datalayer import Database, MessageRepository, SessionModel, SessionRepository, UserModel, UserRepository


async def mistakes(db: Database, some_id: UUID) -> None:
    async with db.session() as s:
        users, sessions = UserRepository(s), SessionRepository(s)
        chat = await sessions.get(some_id)
        await users.create(emial="ada@example.com", username="ada")  # expect-error: misspelled field
        await users.create(email="ada@example.com", username=42)  # expect-error: int for a str
        await users.create(username="ada")  # expect-error: required field missing
        await sessions.create(user_id=some_id, status="runing")  # expect-error: not a status
        await sessions.update(some_id, nickname="x")  # expect-error: unknown field in update
        await sessions.update(some_id, id=some_id)  # expect-error: id is not updatable
        await sessions.update(some_id, status="done")  # expect-error: not a status, in update
        await sessions.get_all(filters=[chat.name == "x"])  # expect-error: a bool, not a SQL expression
        await users.get_all(filters=[UserModel.is_active == True])  # noqa: E712  # expect-error: no col()
        await users.count(filters=[col(UserModel.username)])  # expect-error: a column, not a condition
        await users.upsert(on="email", email="a@example.com", username="a")  # expect-error: bare str
        messages = MessageRepository(s)
        await messages.append(some_id, message_type="user", sequence_number=3)  # expect-error: set by append
        await messages.soft_delete(some_id)  # expect-error: append-only table
        await sessions.get_all(order_by=[SessionModel.name])  # expect-error: no col()
