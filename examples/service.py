"""A small FastAPI service on datalayer: users and their agent sessions over HTTP.

The shape of the reference's "Use in Service": one ``Database`` for the process, its
``session_dependency`` as the unit of work of each request (committed when the handler
returns, rolled back when it raises), repositories built inside the handlers, and
datalayer's errors mapped to HTTP statuses:

=============================  ======  ==========================================
``NotFoundError``              404     ``{"detail": message}``
``ConflictError``              409     ``{"detail": message}`` (e.g. a taken email)
``InvalidDataError``           422     ``{"detail": message, "field": name}``
``ConstraintViolationError``   422     ``{"detail": message}``
``DatabaseUnavailableError``   503     ``{"detail": message}``, ``Retry-After: 5``
=============================  ======  ==========================================

Input is validated once, by the repositories (enum values, lengths, unknown fields), so
the request models below only shape the JSON; FastAPI's own 422 covers malformed JSON and
path/query values that are not UUIDs or integers.

Run it (FastAPI and an ASGI server are not dependencies of datalayer)::

    datalayer migrate                       # or: python -c "import datalayer.migrate as m; m.upgrade()"
    uvicorn examples.service:app            # DATALAYER_DATABASE_URL picks the database

Tests build their own app around a test database with :func:`create_app`.
"""

# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at run time.
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from datalayer import Database
from datalayer.errors import (
    ConflictError,
    ConstraintViolationError,
    DatabaseUnavailableError,
    InvalidDataError,
    NotFoundError,
)
from datalayer.models import SessionModel, UserModel
from datalayer.repositories import DEFAULT_LIMIT, SessionRepository, UserRepository

__all__ = ["Unit", "app", "create_app", "database", "unit_of_work"]


class UserCreate(BaseModel):
    """Body of ``POST /users``."""

    model_config = ConfigDict(extra="forbid")

    email: str
    username: str
    full_name: str | None = None


class SessionCreate(BaseModel):
    """Body of ``POST /sessions``; ``mode`` and ``status`` are checked by the repository."""

    model_config = ConfigDict(extra="forbid")

    user_id: UUID
    name: str | None = None
    mode: str | None = None
    status: str | None = None
    working_directory: str | None = None
    sdk_options: dict[str, Any] | None = None


class SessionPatch(BaseModel):
    """Body of ``PATCH /sessions/{id}``: only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    status: str | None = None
    working_directory: str | None = None
    sdk_options: dict[str, Any] | None = None
    completed_at: datetime | None = None


async def unit_of_work(request: Request) -> AsyncGenerator[AsyncSession]:
    """Yield the request's unit of work on the app's ``Database`` (``db.session()`` semantics)."""
    db: Database = request.app.state.database
    async with db.session() as session:
        yield session


#: A handler parameter typed ``Unit`` is the request's session. scope="function": the commit
#: runs before the response is sent, so a failed commit becomes an error response instead
#: of a success the database never saw. Module level, so type checkers see a valid type.
Unit = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]


def create_app(db: Database, *, dispose_on_shutdown: bool = False) -> FastAPI:
    """Return the service's FastAPI app, using ``db`` for every request."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None]:
        yield
        if dispose_on_shutdown:
            await db.dispose()

    app = FastAPI(title="datalayer example service", lifespan=lifespan)
    app.state.database = db
    _install_error_handlers(app)

    @app.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserModel)
    async def create_user(body: UserCreate, s: Unit) -> UserModel:
        return await UserRepository(s).create(**body.model_dump(exclude_none=True))

    @app.get("/users/{user_id}", response_model=UserModel)
    async def get_user(user_id: UUID, s: Unit) -> UserModel:
        return await UserRepository(s).get(user_id)

    @app.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_user(user_id: UUID, s: Unit) -> Response:
        if not await UserRepository(s).soft_delete(user_id):
            raise NotFoundError("UserModel", user_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @app.get("/users/{user_id}/sessions", response_model=list[SessionModel])
    async def list_user_sessions(
        user_id: UUID, s: Unit, skip: int = 0, limit: int = DEFAULT_LIMIT
    ) -> list[SessionModel]:
        if not await UserRepository(s).exists(user_id):
            raise NotFoundError("UserModel", user_id)
        return await SessionRepository(s).get_by_user(user_id, skip=skip, limit=limit)

    @app.post("/sessions", status_code=status.HTTP_201_CREATED, response_model=SessionModel)
    async def create_session(body: SessionCreate, s: Unit) -> SessionModel:
        # A soft-deleted user still satisfies the foreign key: check visibility first.
        if not await UserRepository(s).exists(body.user_id):
            raise InvalidDataError.for_field("user_id", str(body.user_id), "no such user")
        return await SessionRepository(s).create(**body.model_dump(exclude_none=True))

    @app.get("/sessions/{session_id}", response_model=SessionModel)
    async def get_session(session_id: UUID, s: Unit) -> SessionModel:
        return await SessionRepository(s).get(session_id)

    @app.patch("/sessions/{session_id}", response_model=SessionModel)
    async def update_session(session_id: UUID, body: SessionPatch, s: Unit) -> SessionModel:
        changes = body.model_dump(exclude_unset=True)
        repository = SessionRepository(s)
        updated = await repository.update(session_id, **changes) if changes else None
        # None: nothing to change, or no such (live) row; get() answers or raises NotFoundError.
        return updated if updated is not None else await repository.get(session_id)

    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Map datalayer's errors to HTTP responses (see the module docstring)."""

    def handler(code: int, **headers: str) -> Any:
        async def respond(request: Request, exc: Exception) -> JSONResponse:
            body: dict[str, Any] = {"detail": str(exc)}
            if isinstance(exc, InvalidDataError) and exc.field is not None:
                body["field"] = exc.field
            return JSONResponse(body, status_code=code, headers=headers or None)

        return respond

    app.add_exception_handler(NotFoundError, handler(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(ConflictError, handler(status.HTTP_409_CONFLICT))
    app.add_exception_handler(InvalidDataError, handler(status.HTTP_422_UNPROCESSABLE_CONTENT))
    app.add_exception_handler(ConstraintViolationError, handler(status.HTTP_422_UNPROCESSABLE_CONTENT))
    app.add_exception_handler(
        DatabaseUnavailableError, handler(status.HTTP_503_SERVICE_UNAVAILABLE, **{"Retry-After": "5"})
    )


#: The process-wide Database: ``$DATALAYER_DATABASE_URL``, else ``./datalayer.db``.
#: Creating it opens no connection; the first request does.
database = Database()
app = create_app(database, dispose_on_shutdown=True)
