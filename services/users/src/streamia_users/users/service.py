"""The rules of accounts, sessions and passwords. Never commits: the boundary does.

Hashing and verifying a password (tens of milliseconds of argon2) never happens inside a
write unit of work: embedded, SQLite has one writer per database, and a login holding it while
its hash runs would make every other write of the service queue behind it. A password is
hashed before the unit of work's first statement, and verified against an account read in a
read session; the write that follows checks the hash it verified is still the stored one.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.auth import Identity, RevocationStore, SigningKey
from streamia_kit.db import utcnow
from streamia_kit.errors import BadRequest, Conflict, NotFound, ServiceUnavailable, Unauthorized
from streamia_kit.events import PasswordResetRequested, UserDeleted, UserRegistered, UserUpdated
from streamia_kit.messaging import Outbox
from streamia_users.config import UsersSettings
from streamia_users.users import schemas
from streamia_users.users.models import PasswordResetToken, User
from streamia_users.users.repository import UsersRepository

LOGIN_FAILED = "Email or password incorrect"
RESET_INVALID = "Expired or invalid token"
BUSY_RETRY_AFTER_SECONDS = 1

T = TypeVar("T")


class Busy(ServiceUnavailable):
    """Every password worker is taken and the queue is full: shed the request at once."""

    code = "busy"

    def __init__(self) -> None:
        super().__init__(
            "The server is busy, please retry shortly",
            headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
        )


# The monolith's bcrypt hashes ($2a$/$2b$/$2y$), kept by `streamia import-monolith`.
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


def is_bcrypt(password_hash: str) -> bool:
    return password_hash.startswith(_BCRYPT_PREFIXES)


def _bcrypt_matches(password_hash: str, password: str) -> bool:
    # bcrypt reads at most 72 bytes; the monolith's bcryptjs ignored the rest, and so do we.
    try:
        return bcrypt.checkpw(password.encode()[:72], password_hash.encode())
    except ValueError:  # a malformed hash
        return False


class Passwords:
    """argon2id hashing in a bounded pool: a burst of logins queues a little, then is shed
    with 503 `busy`, so it never piles up into timeouts that take the service down.

    Accounts imported from the monolith arrive with bcrypt hashes: those verify with bcrypt
    and `needs_rehash` says so, so the first successful login stores an argon2 hash.
    """

    def __init__(self, settings: UsersSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._pool = ThreadPoolExecutor(settings.password_workers, thread_name_prefix="argon2")
        # One slot per running or waiting hash; released by the pool when the hash ends, so a
        # client that hangs up does not free a slot its hash still occupies.
        self._slots = threading.BoundedSemaphore(
            settings.password_workers + settings.password_queue_limit
        )
        # Verified against when the email is unknown, so timing does not reveal accounts.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    async def _run(self, work: Callable[[], T]) -> T:
        if not self._slots.acquire(blocking=False):
            raise Busy()
        try:
            future = self._pool.submit(work)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(future)

    async def hash(self, password: str) -> str:
        return await self._run(lambda: self._hasher.hash(password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            if password_hash and is_bcrypt(password_hash):
                return _bcrypt_matches(password_hash, password)
            try:
                return self._hasher.verify(password_hash or self._dummy, password) and bool(
                    password_hash
                )
            except (VerificationError, InvalidHashError):
                return False

        return await self._run(check)

    def needs_rehash(self, password_hash: str) -> bool:
        return is_bcrypt(password_hash) or self._hasher.check_needs_rehash(password_hash)


@dataclass(slots=True)
class Session:
    user: User
    token: str


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class UsersService:
    def __init__(
        self,
        settings: UsersSettings,
        key: SigningKey,
        passwords: Passwords,
        revocations: RevocationStore,
        outbox: Outbox,
    ) -> None:
        self.settings = settings
        self.key = key
        self.passwords = passwords
        self.revocations = revocations
        self.outbox = outbox

    def _token(self, user: User, now: float | None = None) -> str:
        return self.key.issue(
            user.id, user.email, user.role, self.settings.token_lifetime_seconds, now=now
        )

    async def _revoke_all(self, user_id: str) -> float:
        """Invalidate every token issued before now; returns that instant."""
        now = time.time()
        await self.revocations.revoke_user_before(user_id, now)
        return now

    async def register(
        self, session: AsyncSession, data: schemas.RegisterIn, language: schemas.Language
    ) -> Session:
        """A new account; `language` is `data.language` or the one the request prefers."""
        password_hash = await self.passwords.hash(data.password)  # before the first statement
        repo = UsersRepository(session)
        if await repo.email_taken(data.email):
            raise Conflict("Email already registered", code="email_taken")
        user = await repo.add(
            User(
                first_name=data.firstName,
                last_name=data.lastName,
                age=data.age,
                email=data.email,
                password_hash=password_hash,
                role="user",
                language=data.language or language,
            )
        )
        await self.outbox.add(
            session,
            UserRegistered(
                user_id=user.id,
                email=user.email,
                first_name=user.first_name,
                last_name=user.last_name,
                language=user.language,
            ),
        )
        return Session(user, self._token(user))

    async def login(
        self, read: AsyncSession, write: AsyncSession, data: schemas.LoginIn
    ) -> Session:
        """The account is looked up in `read`; `write` is used only to store a rehash."""
        user = await UsersRepository(read).get_by_email(data.email.lower())
        await read.close()  # its connection back in the pool before the slow check
        if not await self.passwords.verify(user.password_hash if user else None, data.password):
            raise Unauthorized(LOGIN_FAILED, code="invalid_credentials")
        assert user is not None
        if self.passwords.needs_rehash(user.password_hash):
            rehashed = await self.passwords.hash(data.password)
            # A password changed meanwhile keeps its newer hash (and this login its token).
            if await UsersRepository(write).replace_password_hash(
                user.id, user.password_hash, rehashed
            ):
                user.password_hash = rehashed
        return Session(user, self._token(user))

    async def logout(self, identity: Identity) -> None:
        await self.revocations.revoke_token(identity.jti, identity.exp)

    async def me(self, session: AsyncSession, identity: Identity) -> User:
        user = await UsersRepository(session).get(identity.id)
        if user is None:
            raise NotFound("User not found", code="user_not_found")
        return user

    async def update_me(
        self, session: AsyncSession, identity: Identity, data: schemas.UpdateMeIn
    ) -> User:
        repo = UsersRepository(session)
        user = await self.me(session, identity)
        changes = data.model_dump(exclude_none=True)
        if not changes:
            return user
        if "email" in changes and changes["email"] != user.email:
            if await repo.email_taken(changes["email"], except_id=user.id):
                raise Conflict("Email already registered", code="email_taken")
            user.email = changes["email"]
        user.first_name = changes.get("firstName", user.first_name)
        user.last_name = changes.get("lastName", user.last_name)
        user.age = changes.get("age", user.age)
        user.language = changes.get("language", user.language)
        user.updated_at = utcnow()
        await session.flush()
        await self.outbox.add(
            session,
            UserUpdated(
                user_id=user.id,
                email=user.email,
                first_name=user.first_name,
                last_name=user.last_name,
                language=user.language,
            ),
        )
        return user

    async def _verified(
        self, read: AsyncSession, identity: Identity, password: str, wrong: str
    ) -> User:
        """The caller's account once `password` is its password; 400 `wrong` otherwise
        (not 401, as the monolith: its clients treat a 401 as "session expired")."""
        user = await UsersRepository(read).get(identity.id)
        await read.close()  # its connection back in the pool before the slow check
        if user is None:
            raise NotFound("User not found", code="user_not_found")
        if not await self.passwords.verify(user.password_hash, password):
            raise BadRequest(wrong, code="invalid_credentials")
        return user

    async def change_password(
        self,
        read: AsyncSession,
        write: AsyncSession,
        identity: Identity,
        data: schemas.ChangePasswordIn,
    ) -> Session:
        user = await self._verified(
            read, identity, data.currentPassword, "Current password is incorrect"
        )
        new_hash = await self.passwords.hash(data.newPassword)
        now = utcnow()
        if not await UsersRepository(write).replace_password_hash(
            user.id, user.password_hash, new_hash, updated_at=now
        ):
            # Changed (or deleted) since it was verified: the current password is not current.
            raise BadRequest("Current password is incorrect", code="invalid_credentials")
        user.password_hash, user.updated_at = new_hash, now
        revoked_at = await self._revoke_all(user.id)
        # The new token is issued strictly after the revocation instant, so it stays valid.
        return Session(user, self._token(user, now=revoked_at + 0.002))

    async def delete_me(
        self,
        read: AsyncSession,
        write: AsyncSession,
        identity: Identity,
        data: schemas.DeleteMeIn,
    ) -> None:
        verified = await self._verified(read, identity, data.password, "Password is incorrect")
        repo = UsersRepository(write)
        user = await repo.get(identity.id, lock=True)
        if user is None:
            raise NotFound("User not found", code="user_not_found")
        if user.password_hash != verified.password_hash:  # changed since it was verified
            raise BadRequest("Password is incorrect", code="invalid_credentials")
        await self.outbox.add(
            write,
            UserDeleted(
                user_id=user.id,
                email=user.email,
                first_name=user.first_name,
                last_name=user.last_name,
                language=user.language,
            ),
        )
        await repo.delete(user)
        await self._revoke_all(user.id)

    async def forgot_password(self, session: AsyncSession, data: schemas.ForgotPasswordIn) -> None:
        """Issue a reset token for a real account, at most one per address per
        `reset_email_interval_seconds` (a flood of requests sends one email)."""
        repo = UsersRepository(session)
        # The row lock makes concurrent requests for one address take turns (PostgreSQL).
        user = await repo.get_by_email(data.email, lock=True)
        if user is None:
            return
        raw = secrets.token_urlsafe(32)  # 32 random bytes
        lifetime = self.settings.reset_token_lifetime_seconds
        now = utcnow()
        expires = now + timedelta(seconds=lifetime)
        issued = await repo.add_reset_token_unless_recent(
            PasswordResetToken(token_hash=_hash_token(raw), user_id=user.id, expires_at=expires),
            recent_if_expiring_after=expires
            - timedelta(seconds=self.settings.reset_email_interval_seconds),
        )
        if not issued:
            return
        await self.outbox.add(
            session,
            PasswordResetRequested(
                user_id=user.id,
                email=user.email,
                first_name=user.first_name,
                language=user.language,
                token=raw,
                expires_at=expires,
            ),
        )

    async def reset_password(
        self, read: AsyncSession, write: AsyncSession, data: schemas.ResetPasswordIn
    ) -> None:
        token_hash = _hash_token(data.token)
        # A token that cannot be used costs no hash; one that can is taken after the hash.
        usable = await UsersRepository(read).usable_reset_token(token_hash, utcnow())
        await read.close()
        if not usable:
            raise BadRequest(RESET_INVALID, code="invalid_reset_token")
        new_hash = await self.passwords.hash(data.newPassword)
        repo = UsersRepository(write)
        now = utcnow()
        token = await repo.take_reset_token(token_hash, now)
        user = await repo.get(token.user_id) if token else None
        if token is None or user is None:
            raise BadRequest(RESET_INVALID, code="invalid_reset_token")
        user.password_hash = new_hash
        user.updated_at = now
        await repo.invalidate_reset_tokens(user.id, now)
        await write.flush()
        await self._revoke_all(user.id)

    async def promote(self, session: AsyncSession, email: str) -> User:
        """Give an existing account the admin role; its earlier tokens carry the old role."""
        user = await UsersRepository(session).get_by_email(email.strip().lower())
        if user is None:
            raise NotFound(f"No account with email {email}", code="user_not_found")
        if user.role != "admin":
            user.role = "admin"
            user.updated_at = utcnow()
            await session.flush()
            await self._revoke_all(user.id)
        return user

    async def create_admin(
        self, session: AsyncSession, email: str, password: str, first_name: str, last_name: str
    ) -> User:
        """Create an admin account, or promote the existing account with that email."""
        password_hash = await self.passwords.hash(password)  # before the first statement
        repo = UsersRepository(session)
        email = schemas._email(email)
        user = await repo.get_by_email(email)
        if user is not None:
            user.role = "admin"
            user.updated_at = utcnow()
            await session.flush()
            await self._revoke_all(user.id)  # old tokens carry the old role
            return user
        schemas._strong(password)
        user = await repo.add(
            User(
                first_name=first_name,
                last_name=last_name,
                age=30,
                email=email,
                password_hash=password_hash,
                role="admin",
            )
        )
        await self.outbox.add(
            session,
            UserRegistered(
                user_id=user.id,
                email=user.email,
                first_name=user.first_name,
                last_name=user.last_name,
                language=user.language,
            ),
        )
        return user
