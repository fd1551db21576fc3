"""Annotated dependency aliases of the users service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from streamia_users.users.service import UsersService


async def _users(request: Request) -> UsersService:
    return request.app.state.users


UsersServiceDep = Annotated[UsersService, Depends(_users)]
