"""The README's usage example, runnable (tests/test_examples.py runs it)."""

import asyncio

from datalayer import Database, MessageRepository, SessionRepository, UserRepository
from datalayer.errors import ConflictError


async def main() -> None:
    async with Database() as db:  # $DATALAYER_DATABASE_URL, else ./datalayer.db
        await db.create_all()  # production runs `datalayer migrate` instead
        async with db.session() as s:  # unit of work: commit, or rollback on error
            users, sessions = UserRepository(s), SessionRepository(s)
            user = await users.get_by_email("ada@example.com")  # case-insensitive
            if user is None:
                user = await users.create(email="ada@example.com", username="ada")
            chat = await sessions.create(user_id=user.id, name="first", status="active")
            await MessageRepository(s).append(chat.id, message_type="user", content={"text": "hi"})
            await sessions.add_usage(chat.id, total_messages=1, total_cost_usd=0.0125)
            print(chat.total_messages, chat.total_cost_usd)  # 1 0.012500000: loaded rows stay current
        async with db.session(read_only=True) as s:  # no BEGIN/COMMIT on PostgreSQL; the replica if any
            print(len(await SessionRepository(s).get_by_user(user.id, limit=10)))
        try:
            async with db.session() as s:
                await UserRepository(s).create(email="ADA@example.com", username="ada2")
        except ConflictError:  # email unique among live users
            print("refused: the email is taken")


if __name__ == "__main__":
    asyncio.run(main())
