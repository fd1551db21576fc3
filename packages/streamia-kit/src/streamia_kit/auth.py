"""JWT: EdDSA keys with a `kid`, JWKS, and the one verification helper every service uses."""

from __future__ import annotations

import asyncio
import hashlib
import json
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

from streamia_kit.breaker import CircuitBreaker
from streamia_kit.errors import Unauthorized
from streamia_kit.faults import TransientError
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


class MemoryRevocationStore:
    """In-process revocation, for tests and a process that needs nothing to outlive it."""

    def __init__(self) -> None:
        self._tokens: dict[str, float] = {}
        self._users: dict[str, float] = {}

    async def revoke_token(self, jti: str, exp: float) -> None:
        now = time.time()
        if len(self._tokens) > 10_000:
            self._tokens = {k: v for k, v in self._tokens.items() if v > now}
        self._tokens[jti] = exp

    async def revoke_user_before(self, user_id: str, before: float) -> None:
        self._users[user_id] = max(before, self._users.get(user_id, 0.0))

    async def is_revoked(self, jti: str, user_id: str, iat: float) -> bool:
        return jti in self._tokens or iat < self._users.get(user_id, 0.0)


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
        super().__init__()
        self._path = path
        self._ttl = max_token_lifetime
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
    """The one Redis key of a revocation: the users service writes it, every reader reads it."""
    return f"{namespace}:revoked:{kind}:{value}" if namespace else f"revoked:{kind}:{value}"


class RevocationsUnavailable(TransientError):
    """The revocation store cannot say whether a token was revoked: the request is refused
    (503), never let through unchecked."""


class RedisRevocationStore:
    """Revocation shared by every process through Redis; keys expire with the tokens.

    The check on every request fails fast while Redis is away: each call is bounded by
    `check_timeout`, and after a failure a breaker refuses the next checks at once for
    `retry_seconds`, then lets one through as the probe. Without it, a black-holed Redis
    held every authenticated request for seconds (redis-py's pool connects one caller at a
    time, each paying the socket timeout) instead of answering 503 at once.
    """

    def __init__(
        self,
        redis: Any,
        *,
        namespace: str,
        max_token_lifetime: int = MAX_TOKEN_LIFETIME_SECONDS,
        check_timeout: float = 2.0,
        retry_seconds: float = 0.25,
    ) -> None:
        self._redis = redis
        self._namespace = namespace
        self._ttl = max_token_lifetime
        self._check_timeout = check_timeout
        self._breaker = CircuitBreaker.on_first_failure("revocations", retry_seconds)

    async def revoke_token(self, jti: str, exp: float) -> None:
        ttl = max(1, int(exp - time.time()) + 1)
        await self._redis.set(revocation_key(self._namespace, "jti", jti), "1", ex=ttl)

    async def revoke_user_before(self, user_id: str, before: float) -> None:
        await self._redis.set(
            revocation_key(self._namespace, "user", user_id), repr(before), ex=self._ttl
        )

    async def is_revoked(self, jti: str, user_id: str, iat: float) -> bool:
        async def check() -> Any:
            async with asyncio.timeout(self._check_timeout):
                return await self._redis.mget(
                    revocation_key(self._namespace, "jti", jti),
                    revocation_key(self._namespace, "user", user_id),
                )

        done, found = await self._breaker.attempt(check, _revocations_failed)
        if not done:
            raise RevocationsUnavailable("the revocation store is unavailable")
        token, before = found
        if token is not None:
            return True
        return before is not None and iat < float(before)


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
    is consulted on every request, so a logout takes effect at once.
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
