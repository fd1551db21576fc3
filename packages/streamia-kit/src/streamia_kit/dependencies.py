"""Annotated dependency aliases every service shares: the caller's identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

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


@dataclass(frozen=True, slots=True)
class Page:
    """API.md list parameters: `page` (1-based) and `limit` (default 20, max 100)."""

    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


async def _page(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page:
    return Page(page, limit)


PageDep = Annotated[Page, Depends(_page)]
