"""HTTP endpoints of API.md's Users section: parse, call the service, shape the response."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from fastapi import APIRouter, BackgroundTasks, Request, Response

from streamia_kit.db import Database
from streamia_kit.dependencies import CurrentUser, OptionalUser, ReadSession, WriteSession
from streamia_kit.openapi import errors
from streamia_users.dependencies import UsersServiceDep
from streamia_users.users import schemas
from streamia_users.users.service import UsersService

router = APIRouter(prefix="/api/users", tags=["users"])
keys_router = APIRouter(tags=["keys"])

log = structlog.get_logger("streamia.users")

FORGOT_MESSAGE = "If an account exists for that email, a password reset link has been sent."
AFTER_ANSWER_SECONDS = 0.1


@router.post("/register", status_code=201, responses=errors(409))
async def register(
    body: schemas.RegisterIn,
    users: UsersServiceDep,
    request: Request,
    session: WriteSession,
) -> Any:
    language = schemas.preferred_language(request.headers.get("accept-language"))
    result = await users.register(session, body, language)
    return {
        "message": "User registered successfully",
        "user": schemas.user_out(result.user),
        "token": result.token,
    }


@router.post("/login")
async def login(
    body: schemas.LoginIn, users: UsersServiceDep, read: ReadSession, write: WriteSession
) -> Any:
    result = await users.login(read, write, body)
    return {
        "message": "Login successful",
        "token": result.token,
        "user": schemas.user_out(result.user),
    }


@router.post("/logout")
async def logout(identity: OptionalUser, users: UsersServiceDep) -> Any:
    if identity is not None:  # without a token there is nothing to revoke: 200, as the monolith
        await users.logout(identity)
    return {"message": "Logout successful"}


@router.post("/forgot-password")
async def forgot_password(
    body: schemas.ForgotPasswordIn,
    users: UsersServiceDep,
    request: Request,
    background: BackgroundTasks,
) -> Any:
    # The work runs after the answer is sent, so how long the answer takes cannot tell a
    # known address from an unknown one; outside the request's unit of work, it opens its own.
    background.add_task(_request_reset, request.app.state.service.db, users, body)
    return {"message": FORGOT_MESSAGE}


async def _request_reset(db: Database, users: UsersService, body: schemas.ForgotPasswordIn) -> None:
    # Sent is not yet delivered: embedded, the gateway relays the answer on this same event
    # loop, and work started at once made known addresses' answers 2-13 ms slower (median of
    # 40 pairs) on a loaded box. A tenth of a second later the answer is out.
    await asyncio.sleep(AFTER_ANSWER_SECONDS)
    try:
        async with db.transaction() as session:
            await users.forgot_password(session, body)
    except Exception:  # the client has its answer; the log keeps the failure
        log.exception("password_reset_request_failed")


@router.post("/reset-password")
async def reset_password(
    body: schemas.ResetPasswordIn,
    users: UsersServiceDep,
    read: ReadSession,
    write: WriteSession,
) -> Any:
    await users.reset_password(read, write, body)
    return {"message": "Password has been reset successfully"}


@router.get("/me")
async def get_me(identity: CurrentUser, users: UsersServiceDep, session: ReadSession) -> Any:
    user = await users.me(session, identity)
    return {"user": schemas.user_out(user)}


@router.put("/me", responses=errors(409))
async def update_me(
    body: schemas.UpdateMeIn,
    identity: CurrentUser,
    users: UsersServiceDep,
    session: WriteSession,
) -> Any:
    user = await users.update_me(session, identity, body)
    return {"message": "Profile updated successfully", "user": schemas.user_out(user)}


@router.delete("/me", status_code=204)
async def delete_me(
    body: schemas.DeleteMeIn,
    identity: CurrentUser,
    users: UsersServiceDep,
    read: ReadSession,
    write: WriteSession,
) -> Response:
    await users.delete_me(read, write, identity, body)
    return Response(status_code=204)


@router.put("/change-password")
async def change_password(
    body: schemas.ChangePasswordIn,
    identity: CurrentUser,
    users: UsersServiceDep,
    read: ReadSession,
    write: WriteSession,
) -> Any:
    result = await users.change_password(read, write, identity, body)
    return {"message": "Password changed successfully", "token": result.token}


@keys_router.get("/.well-known/jwks.json")
async def jwks(users: UsersServiceDep) -> Any:
    return users.key.jwks()
