"""The only place the users service talks SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, delete, exists, func, insert, literal, select, update

from streamia_kit.db import UTCDateTime, rowcount
from streamia_kit.repository import Repository
from streamia_users.users.models import DeletedAccount, PasswordResetToken, User


class UsersRepository(Repository[User]):
    async def get(self, user_id: str, lock: bool = False) -> User | None:
        """The account; `lock` holds its row until commit (PostgreSQL)."""
        return await self.session.get(User, user_id, with_for_update=lock)

    async def get_by_email(self, email: str, lock: bool = False) -> User | None:
        """The account with this email; `lock` holds its row until commit (PostgreSQL)."""
        query = select(User).where(User.email == email)
        return await self.session.scalar(query.with_for_update() if lock else query)

    async def email_taken(self, email: str, except_id: str | None = None) -> bool:
        query = select(func.count()).select_from(User).where(User.email == email)
        if except_id:
            query = query.where(User.id != except_id)
        return bool(await self.session.scalar(query))

    async def replace_password_hash(
        self, user_id: str, old: str, new: str, updated_at: datetime | None = None
    ) -> bool:
        """Store `new` if `old` is still the stored hash (compare and set); `updated_at` is
        left as it is without one (a rehash of the same password)."""
        values: dict[str, object] = {"password_hash": new}
        if updated_at is not None:
            values["updated_at"] = updated_at
        result = await self.session.execute(
            update(User).where(User.id == user_id, User.password_hash == old).values(**values)
        )
        return rowcount(result) == 1

    async def delete(self, user: User) -> None:
        await self.session.execute(
            delete(PasswordResetToken).where(PasswordResetToken.user_id == user.id)
        )
        await self.session.delete(user)
        # In the same transaction: the account is gone, and remembered as deleted, together.
        self.session.add(DeletedAccount(id=user.id))
        await self.session.flush()

    async def add_reset_token_unless_recent(
        self, token: PasswordResetToken, recent_if_expiring_after: datetime
    ) -> bool:
        """Store `token` unless the user has one expiring after the given instant (one issued
        lately); a single statement, so concurrent requests on SQLite cannot both insert."""
        recent = select(PasswordResetToken.token_hash).where(
            PasswordResetToken.user_id == token.user_id,
            PasswordResetToken.expires_at > recent_if_expiring_after,
        )
        values = select(
            literal(token.token_hash, String),
            literal(token.user_id, String),
            literal(token.expires_at, UTCDateTime),
        ).where(~exists(recent))
        result = await self.session.execute(
            insert(PasswordResetToken).from_select(["token_hash", "user_id", "expires_at"], values)
        )
        return rowcount(result) == 1

    async def usable_reset_token(self, token_hash: str, now: datetime) -> bool:
        """Whether the token exists, is unused and unexpired (a read; `take_reset_token` takes)."""
        query = select(PasswordResetToken.token_hash).where(
            PasswordResetToken.token_hash == token_hash,
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > now,
        )
        return await self.session.scalar(query) is not None

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
