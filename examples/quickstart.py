"""A first look at datalayer on the embedded SQLite default (``./datalayer.db``)."""

import asyncio

from datalayer import Database, Repository, SessionModel, SessionStatus, SoftDeleteRepository, UserModel


async def main() -> None:
    async with Database() as db:
        await db.create_all()
        async with db.session() as s:  # one unit of work: commit on success, rollback on error
            users = SoftDeleteRepository(UserModel, s)
            ada = await users.get_all(filters=[UserModel.username == "ada"])
            user = ada[0] if ada else await users.create(email="ada@example.com", username="ada")
            sessions = Repository(SessionModel, s)
            created = await sessions.create(user_id=user.id, name="first session", status="active")
            await sessions.update(created.id, status=SessionStatus.COMPLETED, total_cost_usd=0.125)
            print(f"{db!r}: {await users.count()} user(s), {await sessions.count()} session(s)")
            for row in await sessions.get_all(limit=5):
                print(f"  {row.created_at:%Y-%m-%d %H:%M:%S} {row.name} {row.status} ${row.total_cost_usd}")


if __name__ == "__main__":
    asyncio.run(main())
