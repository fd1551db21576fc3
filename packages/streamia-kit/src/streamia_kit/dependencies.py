"""Annotated dependency aliases every service shares: the request's database session and
the caller's identity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.auth import Identity
from streamia_kit.errors import Forbidden


async def write_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the endpoint returns, before the response
    is sent (its `on_commit` callbacks awaited too); rolled back if the endpoint raises."""
    async with request.app.state.service.db.transaction() as session:
        yield session


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for reads, closed when the endpoint returns."""
    async with request.app.state.service.db.sessions() as session:
        yield session


# scope="function": the commit (and its errors) happens before the response, never after.
WriteSession = Annotated[AsyncSession, Depends(write_session, scope="function")]
ReadSession = Annotated[AsyncSession, Depends(read_session, scope="function")]


async def current_identity(request: Request) -> Identity:
    """The verified caller; 401 `No token provided` / `Invalid or expired token` otherwise."""
    verifier = request.app.state.service.verifier
    return await verifier.verify_header(request.headers.get("authorization"))


async def optional_identity(request: Request) -> Identity | None:
    if request.headers.get("authorization") is None:
        return None
    return await current_identity(request)


async def admin_identity(identity: Annotated[Identity, Depends(current_identity)]) -> Identity:
    if not identity.is_admin:
        raise Forbidden("Admin role required", code="admin_required")
    return identity


CurrentUser = Annotated[Identity, Depends(current_identity)]
OptionalUser = Annotated[Identity | None, Depends(optional_identity)]
AdminUser = Annotated[Identity, Depends(admin_identity)]
