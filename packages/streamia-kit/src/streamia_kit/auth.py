"""JWT: EdDSA keys with a `kid`, JWKS, and the one verification helper every service uses."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import aiosqlite
import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from streamia_kit.errors import Unauthorized
from streamia_kit.faults import TransientError, being_cancelled, cancellable
from streamia_kit.files import private_file

ALGORITHM = "EdDSA"
NO_TOKEN = "No token provided"
INVALID_TOKEN = "Invalid or expired token"
# No token lives longer than this, so a "revoked before" record is kept this long.
MAX_TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling, as proven by a verified token."""

    id: str
    email: str
    role: str
    jti: str
    iat: float
    exp: float

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _kid(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class SigningKey:
    """The users service's private key; its `kid` is derived from the public key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private
        self.public = private.public_key()
        self.kid = _kid(self.public)

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the JWT signing key must be an Ed25519 private key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """Load the PEM at `path`, creating a fresh key there on first use."""
        if path.exists():
            return cls.from_pem(path.read_bytes())
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        private_file(path).write_bytes(pem)
        return cls(key)

    def jwk(self) -> dict[str, Any]:
        jwk = json.loads(OKPAlgorithm.to_jwk(self.public))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}

    def issue(
        self, user_id: str, email: str, role: str, lifetime_seconds: int, now: float | None = None
    ) -> str:
        """Sign an access token with the payload API.md describes."""
        issued = time.time() if now is None else now
        payload = {
            "sub": user_id,
            "id": user_id,
            "email": email,
            "role": role,
            # Sub-second iat so a token issued right after a revocation is not caught by it.
            "iat": round(issued, 3),
            "exp": int(issued + lifetime_seconds),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self.private, algorithm=ALGORITHM, headers={"kid": self.kid})


class RevocationStore(Protocol):
    """Where logouts and "sign out everywhere" are recorded."""

    async def revoke_token(self, jti: str, exp: float) -> None: ...
    async def revoke_user_before(self, user_id: str, before: float) -> None: ...
    async def is_revoked(self, jti: str, user_id: str, iat: float) -> bool: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...


# Expired entries are dropped from an in-memory mirror at most this often.
_PRUNE_EVERY_SECONDS = 60.0


class MemoryRevocationStore:
    """In-process revocation, for tests and a process that needs nothing to outlive it; also
    the in-memory mirror the SQLite and Redis stores answer every check from."""

    def __init__(self, max_token_lifetime: int = MAX_TOKEN_LIFETIME_SECONDS) -> None:
        self._ttl = max_token_lifetime
        self._tokens: dict[str, float] = {}  # jti -> the token's expiry
        self._users: dict[str, float] = {}  # user id -> tokens issued before this are dead
        self._pruned_at = time.time()

    def _apply_token(self, jti: str, exp: float) -> None:
        self._prune()
        self._tokens[jti] = max(exp, self._tokens.get(jti, 0.0))

    def _apply_user(self, user_id: str, before: float) -> None:
        self._prune()
        self._users[user_id] = max(before, self._users.get(user_id, 0.0))

    def _prune(self, force: bool = False) -> None:
        """Forget what no unexpired token can be caught by (a marker lives `_ttl`)."""
        now = time.time()
        if not force and now - self._pruned_at < _PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        self._tokens = {k: v for k, v in self._tokens.items() if v > now}
        self._users = {k: v for k, v in self._users.items() if v + self._ttl > now}

    async def revoke_token(self, jti: str, exp: float) -> None:
        self._apply_token(jti, exp)

    async def revoke_user_before(self, user_id: str, before: float) -> None:
        self._apply_user(user_id, before)

    async def is_revoked(self, jti: str, user_id: str, iat: float) -> bool:
        return jti in self._tokens or iat < self._users.get(user_id, 0.0)

    async def start(self) -> None:
        """Nothing to sync: this process is the only writer."""

    async def close(self) -> None:
        """Nothing to stop."""


_REVOCATIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS revoked_tokens (jti TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS revoked_users (
    user_id TEXT PRIMARY KEY, before REAL NOT NULL, expires_at REAL NOT NULL
);
"""


class SqliteRevocationStore(MemoryRevocationStore):
    """Embedded mode's revocations: answered from memory, written through to a SQLite file
    and reloaded on start, so a restart does not bring logged-out tokens back to life. Rows
    are kept until no token they cover can still be unexpired."""

    def __init__(self, path: Path, max_token_lifetime: int = MAX_TOKEN_LIFETIME_SECONDS) -> None:
        super().__init__(max_token_lifetime)
        self._path = path
        self._loaded = False
        self._load_lock = asyncio.Lock()

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[aiosqlite.Connection]:
        async with aiosqlite.connect(private_file(self._path)) as db:
            await db.execute("PRAGMA busy_timeout=5000")
            await db.executescript(_REVOCATIONS_SCHEMA)
            yield db

    async def _load(self) -> None:
        async with self._load_lock:
            if self._loaded:
                return
            now = time.time()
            async with self._connect() as db:
                await db.execute("DELETE FROM revoked_tokens WHERE expires_at <= ?", (now,))
                await db.execute("DELETE FROM revoked_users WHERE expires_at <= ?", (now,))
                await db.commit()
                async with db.execute("SELECT jti, expires_at FROM revoked_tokens") as rows:
                    self._tokens.update({jti: exp async for jti, exp in rows})
                async with db.execute("SELECT user_id, before FROM revoked_users") as rows:
                    self._users.update({user_id: before async for user_id, before in rows})
            self._loaded = True

    async def revoke_token(self, jti: str, exp: float) -> None:
        await self._load()
        await super().revoke_token(jti, exp)
        async with self._connect() as db:
            await db.execute("INSERT OR REPLACE INTO revoked_tokens VALUES (?, ?)", (jti, exp))
            await db.commit()

    async def revoke_user_before(self, user_id: str, before: float) -> None:
        await self._load()
        await super().revoke_user_before(user_id, before)
        async with self._connect() as db:
            await db.execute(
                "INSERT OR REPLACE INTO revoked_users VALUES (?, ?, ?)",
                (user_id, self._users[user_id], time.time() + self._ttl),
            )
            await db.commit()

    async def is_revoked(self, jti: str, user_id: str, iat: float) -> bool:
        if not self._loaded:
            await self._load()
        return await super().is_revoked(jti, user_id, iat)


def revocation_key(namespace: str, kind: str, value: str) -> str:
    """The one Redis key builder of revocations (records, their index and their channel):
    the users service writes with it, every reader reads with it."""
    return f"{namespace}:revoked:{kind}:{value}" if namespace else f"revoked:{kind}:{value}"


class RevocationsUnavailable(TransientError):
    """The revocation store cannot say whether a token was revoked: the request is refused
    (503), never let through unchecked."""


# One atomic step per revocation: its own key (with the token's lifetime), an entry in the
# index readers load from (scored by its expiry, expired entries dropped), and a message on
# the channel every reader's mirror listens to. A user marker never moves back in time.
# KEYS: record, index. ARGV: value, ttl, expiry, member, channel, now, index ttl, is_user.
_REVOKE_SCRIPT = """
if ARGV[8] == '1' then
  local current = redis.call('GET', KEYS[1])
  if current and tonumber(current) >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('PUBLISH', ARGV[5], ARGV[3] .. ' ' .. ARGV[4])
return 1
"""


_LOAD_TIMEOUT_SECONDS = 30.0


class RedisRevocationStore(MemoryRevocationStore):
    """Revocations shared by every process through Redis, checked against an in-memory
    mirror: no Redis round trip per request.

    Writers record a revocation and publish it in one Lua call. Each reader subscribes to the
    channel first, then loads the index, so nothing falls between the two; on a lost
    connection it subscribes and loads again. A ping on the subscription every
    `heartbeat_seconds` tells a live link from a silent (black-holed) one.

    While Redis is away nobody can record a revocation either (logout and password changes
    answer 503), so the last synced mirror is as current as anything can be: tokens are
    checked against it for `grace_seconds` after the link was found lost, then refused (503)
    until it is back. The grace bounds a partition that separates this process from Redis
    while the users service still reaches it. Until the first sync the first checks wait at
    most `sync_timeout` for it (attempts that fail meanwhile, say a connect timeout while
    Redis blips as the process starts, are retried within that wait), then refuse at once
    until it is done.
    """

    def __init__(
        self,
        redis: Any,
        *,
        namespace: str,
        max_token_lifetime: int = MAX_TOKEN_LIFETIME_SECONDS,
        grace_seconds: float = 300.0,
        sync_timeout: float = 2.0,
        heartbeat_seconds: float = 1.0,
        retry_seconds: float = 0.25,
    ) -> None:
        super().__init__(max_token_lifetime)
        self._redis = redis
        self._namespace = namespace
        self._index = revocation_key(namespace, "index", "expiry")
        self._channel = revocation_key(namespace, "channel", "all")
        self._grace = grace_seconds
        self._sync_timeout = sync_timeout
        self._heartbeat = heartbeat_seconds
        # No pong for this long: the subscription is dead even if its socket looks open.
        self._stale_after = 3 * heartbeat_seconds
        self._retry = retry_seconds
        self._script = redis.register_script(_REVOKE_SCRIPT)
        # Monotonic instant up to which the mirror is known to hold every revocation.
        self._synced_at: float | None = None
        self._linked = False
        self._refusing = False
        self._attempted = False  # the first sync succeeded or failed (its failure is logged)
        self._synced = asyncio.Event()
        self._first_wait_over = False  # a check waited `sync_timeout` for the first sync
        self._task: asyncio.Task[None] | None = None
        self.reloads = 0  # full loads of the index, the first included

    # -- writing ---------------------------------------------------------------------------

    async def revoke_token(self, jti: str, exp: float) -> None:
        now = time.time()
        ttl = max(1, int(exp - now) + 1)
        await self._record("jti", jti, "1", ttl, exp, f"jti:{jti}", now)
        self._apply_token(jti, exp)  # this process sees its own write at once

    async def revoke_user_before(self, user_id: str, before: float) -> None:
        now = time.time()
        until = before + self._ttl
        member = f"user:{before!r}:{user_id}"
        await self._record("user", user_id, repr(before), self._ttl, until, member, now)
        self._apply_user(user_id, before)

    async def _record(
        self, kind: str, value: str, stored: str, ttl: int, until: float, member: str, now: float
    ) -> None:
        # On a request's path (logout): redis-py may swallow its cancellation (`cancellable`).
        async with asyncio.timeout(self._sync_timeout):
            await cancellable(
                self._script(
                    keys=[revocation_key(self._namespace, kind, value), self._index],
                    args=[
                        stored,
                        ttl,
                        repr(until),
                        member,
                        self._channel,
                        repr(now),
                        self._ttl + 60,
                        "1" if kind == "user" else "0",
                    ],
                )
            )

    # -- checking --------------------------------------------------------------------------

    async def is_revoked(self, jti: str, user_id: str, iat: float) -> bool:
        if self._synced_at is None:
            await self._first_sync()
        if not self.in_sync():
            if not self._refusing:
                self._refusing = True  # logged once per outage
                structlog.get_logger("streamia.auth").error(
                    "revocations_out_of_sync_past_grace", grace_seconds=self._grace
                )
            raise RevocationsUnavailable("the revocation store is unavailable")
        self._refusing = False
        return await super().is_revoked(jti, user_id, iat)

    def sync_age(self) -> float:
        """Seconds since the mirror was last known complete (infinite before the first sync):
        about a heartbeat while linked, then growing; checks are refused past the grace."""
        if self._synced_at is None:
            return math.inf
        return max(0.0, time.monotonic() - self._synced_at)

    def in_sync(self) -> bool:
        """Whether checks are answered: synced once, and not lost for longer than the grace."""
        if self._synced_at is None:
            return False
        return time.monotonic() - self._synced_at <= self._stale_after + self._grace

    async def _first_sync(self) -> None:
        await self.start()
        if self._first_wait_over:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._sync_timeout):
                await self._synced.wait()
        self._first_wait_over = True

    # -- syncing ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start keeping the mirror in sync (idempotent; checks start it too)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._sync_forever(), name="revocations-sync")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=self._sync_timeout + 1.0)

    async def _sync_forever(self) -> None:
        delay = self._retry
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means: connect again
                if self._linked or not self._attempted:
                    _revocations_failed(exc)
                    delay = self._retry
                self._linked = False
            self._attempted = True
            _raise_if_cancelled()
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 2)

    async def _follow(self) -> None:
        """Subscribe, load, then apply what is published until the link is lost."""
        pubsub = self._redis.pubsub()
        try:
            deadline = time.monotonic() + self._sync_timeout
            async with asyncio.timeout(self._sync_timeout):
                await pubsub.subscribe(self._channel)
                # The first message on a new subscription is its confirmation. The deadline
                # is checked here too: redis-py may swallow the timeout's cancellation.
                while (await pubsub.get_message(timeout=self._sync_timeout)) is None:
                    if time.monotonic() > deadline:
                        raise TimeoutError("the subscription was not confirmed")
            began = time.monotonic()
            async with asyncio.timeout(_LOAD_TIMEOUT_SECONDS):  # a large index takes longer
                await self._load()
            self._synced_at = began
            self._synced.set()
            if not self._linked:
                self._linked = True
                structlog.get_logger("streamia.auth").info(
                    "revocations_synced", revoked=len(self._tokens), users=len(self._users)
                )
            self._attempted = True
            pinged = 0.0
            while True:
                _raise_if_cancelled()
                now = time.monotonic()
                if now - self._synced_at > self._stale_after:
                    raise TimeoutError("no answer on the revocation channel")
                if now - pinged >= self._heartbeat:
                    await pubsub.ping(repr(now))
                    pinged = now
                message = await pubsub.get_message(timeout=self._heartbeat)
                if message is not None:
                    self._receive(message)
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await pubsub.aclose()

    def _receive(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if isinstance(data, bytes):
            data = data.decode()
        if message["type"] == "pong" and data:
            # Everything published before this ping was sent arrived before its answer.
            self._synced_at = max(self._synced_at or 0.0, float(data))
        elif message["type"] == "message":
            until, _, member = str(data).partition(" ")
            self._apply_member(member, float(until))

    async def _load(self) -> None:
        entries = await self._redis.zrangebyscore(self._index, time.time(), "+inf", withscores=True)
        for member, until in entries:
            self._apply_member(member.decode() if isinstance(member, bytes) else member, until)
        self._prune(force=True)
        self.reloads += 1

    def _apply_member(self, member: str, until: float) -> None:
        kind, _, rest = member.partition(":")
        if kind == "jti":
            self._apply_token(rest, until)
        elif kind == "user":
            before, _, user_id = rest.partition(":")
            self._apply_user(user_id, float(before))


def _raise_if_cancelled() -> None:
    """redis-py can swallow a cancellation that lands inside one of its timeouts: the task is
    still marked as cancelling, so stop here instead."""
    if being_cancelled():
        raise asyncio.CancelledError


def _revocations_failed(exc: Exception) -> None:
    structlog.get_logger("streamia.auth").warning(
        "revocations_unavailable", error=f"{type(exc).__name__}: {exc}"[:300]
    )


class KeySource(Protocol):
    async def key_for(self, kid: str) -> Any: ...


class StaticKeys:
    """Public keys known in process (the users service itself, tests)."""

    def __init__(self, *keys: SigningKey) -> None:
        self._keys = {k.kid: k.public for k in keys}

    async def key_for(self, kid: str) -> Any:
        return self._keys.get(kid)


class JwksKeys:
    """Public keys fetched from the users service's JWKS, refreshed on an unknown `kid`."""

    def __init__(self, jwks_url: str, min_refresh_seconds: float = 10.0) -> None:
        self._url = jwks_url
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._min_refresh = min_refresh_seconds
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str) -> Any:
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at > self._min_refresh:
                await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        try:
            timeout = aiohttp.ClientTimeout(total=3)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                async with http.get(self._url) as resp:
                    resp.raise_for_status()
                    data = await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            # The users service is unreachable: tokens signed by unknown keys stay unknown.
            self._fetched_at = time.monotonic() - self._min_refresh + 1.0
            return
        self._fetched_at = time.monotonic()
        keyset = jwt.PyJWKSet.from_dict(data)
        self._keys = {k.key_id: k.key for k in keyset.keys if k.key_id}


def bearer_token(authorization: str | None) -> str:
    """The token from an `Authorization: Bearer` header, or 401 `No token provided`."""
    if not authorization:
        raise Unauthorized(NO_TOKEN, code="no_token")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized(NO_TOKEN, code="no_token")
    return token


class TokenVerifier:
    """Checks signature, expiry and revocation; the gateway and every service use it."""

    def __init__(self, keys: KeySource, revocations: RevocationStore) -> None:
        self._keys = keys
        self._revocations = revocations

    async def verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
            kid = header.get("kid")
            if header.get("alg") != ALGORITHM or not isinstance(kid, str):
                raise Unauthorized(INVALID_TOKEN, code="invalid_token")
            key = await self._keys.key_for(kid)
            if key is None:
                raise Unauthorized(INVALID_TOKEN, code="invalid_token")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "exp", "iat", "jti"]},
            )
            identity = Identity(
                id=str(claims["sub"]),
                email=str(claims.get("email", "")),
                role=str(claims.get("role", "user")),
                jti=str(claims["jti"]),
                iat=float(claims["iat"]),
                exp=float(claims["exp"]),
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(INVALID_TOKEN, code="invalid_token") from exc
        if await self._revocations.is_revoked(identity.jti, identity.id, identity.iat):
            raise Unauthorized(INVALID_TOKEN, code="invalid_token")
        return identity

    async def verify_header(self, authorization: str | None) -> Identity:
        return await self.verify(bearer_token(authorization))


class CachedTokenVerifier:
    """Skips the Ed25519 check (most of the gateway's per-request CPU) for recently seen tokens.

    A signature that verified once stays valid, so only the outcome of the kit verifier is
    cached, for at most `ttl` seconds and never past the token's `exp`; the revocation store
    (an in-memory mirror) is consulted on every request, so a logout takes effect as soon
    as it reaches this process.
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        revocations: RevocationStore,
        ttl: float = 60.0,
        max_entries: int = 10_000,
    ) -> None:
        self._verifier = verifier
        self._revocations = revocations
        self._ttl = ttl
        self._max = max_entries
        self._verified: OrderedDict[str, tuple[Identity, float]] = OrderedDict()

    async def verify_header(self, authorization: str | None) -> Identity:
        """The caller's identity, or Unauthorized with the kit's messages."""
        token = bearer_token(authorization)
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            identity, until = cached
            if now < until:
                if await self._revocations.is_revoked(identity.jti, identity.id, identity.iat):
                    raise Unauthorized(INVALID_TOKEN, code="invalid_token")
                return identity
            del self._verified[token]
        identity = await self._verifier.verify(token)  # signature, expiry and revocation
        if self._ttl > 0:
            if len(self._verified) >= self._max:
                self._verified.popitem(last=False)
            self._verified[token] = (identity, min(identity.exp, now + self._ttl))
        return identity
