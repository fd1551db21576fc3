"""The only place the users service talks SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.db import rowcount
from streamia_users.users.models import PasswordResetToken, User


class UsersRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email))

    async def email_taken(self, email: str, except_id: str | None = None) -> bool:
        query = select(func.count()).select_from(User).where(User.email == email)
        if except_id:
            query = query.where(User.id != except_id)
        return bool(await self.session.scalar(query))

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def delete(self, user: User) -> None:
        await self.session.execute(
            delete(PasswordResetToken).where(PasswordResetToken.user_id == user.id)
        )
        await self.session.delete(user)
        await self.session.flush()

    async def add_reset_token(self, token: PasswordResetToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def take_reset_token(self, token_hash: str, now: datetime) -> PasswordResetToken | None:
        """Mark a valid, unused token used and return it; None when it cannot be used."""
        token = await self.session.scalar(
            select(PasswordResetToken)
            .where(PasswordResetToken.token_hash == token_hash)
            .with_for_update()
        )
        if token is None or token.used_at is not None or token.expires_at <= now:
            return None
        result = await self.session.execute(
            update(PasswordResetToken)
            .where(
                PasswordResetToken.token_hash == token_hash, PasswordResetToken.used_at.is_(None)
            )
            .values(used_at=now)
        )
        return token if rowcount(result) == 1 else None

    async def invalidate_reset_tokens(self, user_id: str, now: datetime) -> None:
        await self.session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
            .values(used_at=now)
        )
