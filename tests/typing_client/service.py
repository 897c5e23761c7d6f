"""A FastAPI service on datalayer, the way the README's example service is written."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database, NotFoundError, SessionModel, SessionRepository, UserModel, UserRepository
from datalayer.models.inputs import SessionStatusValue

database = Database()
Unit = Annotated[AsyncSession, Depends(database.session_dependency, scope="function")]
app = FastAPI()


class UserIn(BaseModel):
    email: str
    username: str


class SessionPatch(BaseModel):
    name: str | None = None
    status: SessionStatusValue | None = None


@app.post("/users", status_code=201)
async def create_user(body: UserIn, s: Unit) -> UserModel:
    return await UserRepository(s).create(email=body.email, username=body.username)


@app.get("/users/{user_id}/sessions")
async def list_sessions(user_id: UUID, s: Unit, limit: int = 100) -> list[SessionModel]:
    return await SessionRepository(s).get_by_user(user_id, limit=limit)


@app.patch("/sessions/{session_id}")
async def patch_session(session_id: UUID, body: SessionPatch, s: Unit) -> SessionModel:
    # model_dump() is dict[str, Any]: accepted, and validated by the repository at run time.
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    updated = await SessionRepository(s).update(session_id, **changes)
    if updated is None:
        raise NotFoundError("SessionModel", session_id)
    return updated


@app.exception_handler(NotFoundError)
async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)
