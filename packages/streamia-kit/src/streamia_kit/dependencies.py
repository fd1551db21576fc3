"""Annotated dependency aliases every service shares: the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from streamia_kit.auth import Identity
from streamia_kit.errors import Forbidden


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
