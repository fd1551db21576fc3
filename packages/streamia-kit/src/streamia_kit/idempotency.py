"""`Idempotency-Key` on writes: a retry of a POST/PUT/PATCH/DELETE whose answer the client
never saw gets the first answer again instead of doing the work twice.

The first answer (status, headers, body) is kept 24 h, keyed by (user or client address,
method, path, key), with a digest of the request (query and body). A retry with the same
request is answered from it (`Idempotent-Replayed: true`), one with another request is 422,
one while the first is still running is 409. Answers of 500 and above (the 504 of a passed
deadline included) are not kept: the work was not done, and the retry does it.

Stored in Redis in distributed mode and in a SQLite file in embedded mode. While the store
is unreachable the write goes ahead without the guarantee (a warning and a metric): the
write is what the client asked for, and most writes here are idempotent by themselves
(favorites, ratings, deletions); a failed write would be the worse outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import orjson
import structlog
from prometheus_client import Counter

from streamia_kit.breaker import CircuitBreaker
from streamia_kit.deadlines import has_body
from streamia_kit.errors import StreamiaError, send_error
from streamia_kit.faults import cancellable
from streamia_kit.files import private_file

log = structlog.get_logger("streamia.idempotency")

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_HEADER = IDEMPOTENCY_HEADER.lower().encode()
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255
KEEP_SECONDS = 24 * 3600
# How long a claim outlives a request that stopped without a word (a crashed process): a
# retry after it runs the work. Renewed every third of it while the request runs (an upload
# may stream for minutes).
IN_FLIGHT_SECONDS = 60.0
# Answers larger than this are not kept (a write's answer is a few hundred bytes).
MAX_KEPT_BODY = 1024 * 1024
# Answers about the request rather than the work: the retry must run it.
_NOT_KEPT = frozenset({408, 429})
# Response headers that belong to one transmission, not to the answer.
_NOT_REPLAYED = frozenset({b"date", b"server", b"x-request-id", b"connection"})
# A store that does not answer within this is treated as down for this request.
STORE_TIMEOUT_SECONDS = 0.5

IDEMPOTENCY_REQUESTS = Counter(
    "streamia_idempotency_requests_total",
    "Writes sent with an Idempotency-Key, by outcome",
    ["service", "outcome"],
)


@dataclass
class Answer:
    """A kept first answer, or (`pending`) the claim of a request still running."""

    pending: bool
    claim: str = ""
    digest: str = ""
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def dumps(self) -> bytes:
        return orjson.dumps(
            {
                "pending": self.pending,
                "claim": self.claim,
                "digest": self.digest,
                "status": self.status,
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers],
                "body": self.body.decode("latin-1"),
            }
        )

    @classmethod
    def loads(cls, raw: bytes | str) -> Answer:
        data = orjson.loads(raw)
        return cls(
            pending=data["pending"],
            claim=data["claim"],
            digest=data["digest"],
            status=data["status"],
            headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in data["headers"]],
            body=data["body"].encode("latin-1"),
        )


class IdempotencyStore(Protocol):
    async def claim(self, key: str, claim: str, seconds: float) -> Answer | None:
        """Claim `key` for a request now starting (None), or say what holds it already."""
        ...

    async def keep(self, key: str, answer: Answer, seconds: float) -> None:
        """Replace this request's claim with its answer."""
        ...

    async def renew(self, key: str, claim: str, seconds: float) -> None:
        """Keep this request's claim for `seconds` more (it is still running)."""
        ...

    async def release(self, key: str, claim: str) -> None:
        """Drop this request's claim (nothing was done): a retry runs the work."""
        ...

    async def close(self) -> None: ...


# Touch the key only while it still holds this request's claim (the claim may have run out
# and another request may hold the key now).
_RELEASE = """
local held = redis.call('GET', KEYS[1])
if held and cjson.decode(held)['claim'] == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
_RENEW = """
local held = redis.call('GET', KEYS[1])
if held and cjson.decode(held)['claim'] == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class RedisIdempotencyStore:
    """Keys in Redis, shared by every replica; they expire on their own."""

    def __init__(self, redis: Any, namespace: str = "") -> None:
        self._redis = redis
        self._prefix = f"{namespace}:idempotency:" if namespace else "idempotency:"
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)

    async def claim(self, key: str, claim: str, seconds: float) -> Answer | None:
        pending = Answer(pending=True, claim=claim).dumps()
        # SET NX GET (Redis 7): claims a free key, or returns what holds it, in one step.
        held = await self._redis.set(
            self._prefix + key, pending, nx=True, px=int(seconds * 1000), get=True
        )
        return None if held is None else Answer.loads(held)

    async def keep(self, key: str, answer: Answer, seconds: float) -> None:
        await self._redis.set(self._prefix + key, answer.dumps(), px=int(seconds * 1000))

    async def renew(self, key: str, claim: str, seconds: float) -> None:
        await self._renew(keys=[self._prefix + key], args=[claim, int(seconds * 1000)])

    async def release(self, key: str, claim: str) -> None:
        await self._release(keys=[self._prefix + key], args=[claim])

    async def close(self) -> None:
        """Nothing of its own: the Redis client is the infrastructure's."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    answer BLOB NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_idempotency_keys_expires_at ON idempotency_keys (expires_at);
"""


class SqliteIdempotencyStore:
    """Embedded mode's store: a SQLite file beside the services' databases, so a restart
    (the likeliest reason a client never saw its answer) keeps the answers. One connection,
    kept open: embedded mode is one process, and this lock makes claim-or-read atomic."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        self._conn: aiosqlite.Connection | None = None
        self._swept_at = 0.0

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            if self._conn is None:
                conn = await aiosqlite.connect(private_file(self._path))
                await conn.execute("PRAGMA journal_mode=WAL")
                await conn.execute("PRAGMA synchronous=NORMAL")
                await conn.execute("PRAGMA busy_timeout=5000")
                await conn.executescript(_SCHEMA)
                self._conn = conn
            yield self._conn
            await self._conn.commit()

    async def claim(self, key: str, claim: str, seconds: float) -> Answer | None:
        now = time.time()
        async with self._connect() as db:
            if now - self._swept_at > 60:
                await db.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?", (now,))
                self._swept_at = now
            async with db.execute(
                "SELECT answer FROM idempotency_keys WHERE key = ? AND expires_at > ?", (key, now)
            ) as rows:
                row = await rows.fetchone()
            if row is None:
                pending = Answer(pending=True, claim=claim).dumps()
                await db.execute(
                    "INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?)",
                    (key, pending, now + seconds),
                )
        return None if row is None else Answer.loads(row[0])

    async def keep(self, key: str, answer: Answer, seconds: float) -> None:
        async with self._connect() as db:
            await db.execute(
                "INSERT OR REPLACE INTO idempotency_keys VALUES (?, ?, ?)",
                (key, answer.dumps(), time.time() + seconds),
            )

    async def renew(self, key: str, claim: str, seconds: float) -> None:
        async with self._connect() as db:
            if await self._holds(db, key, claim):
                await db.execute(
                    "UPDATE idempotency_keys SET expires_at = ? WHERE key = ?",
                    (time.time() + seconds, key),
                )

    async def release(self, key: str, claim: str) -> None:
        async with self._connect() as db:
            if await self._holds(db, key, claim):
                await db.execute("DELETE FROM idempotency_keys WHERE key = ?", (key,))

    @staticmethod
    async def _holds(db: aiosqlite.Connection, key: str, claim: str) -> bool:
        async with db.execute("SELECT answer FROM idempotency_keys WHERE key = ?", (key,)) as rows:
            row = await rows.fetchone()
        return row is not None and Answer.loads(row[0]).claim == claim

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


class InvalidIdempotencyKey(StreamiaError):
    status, code = 400, "invalid_idempotency_key"


def check_key(raw: bytes) -> str:
    """The key, if 1-255 visible ASCII characters; InvalidIdempotencyKey otherwise."""
    if not 0 < len(raw) <= MAX_KEY_LENGTH or any(b < 0x21 or b > 0x7E for b in raw):
        raise InvalidIdempotencyKey(
            f"{IDEMPOTENCY_HEADER} must be 1-{MAX_KEY_LENGTH} visible ASCII characters"
        )
    return raw.decode("ascii")


Scope = dict[str, Any]


class IdempotencyMiddleware:
    """Applies `Idempotency-Key` to a service's writes (installed by `Service.create_app`)."""

    def __init__(self, app: Any, service: Any) -> None:
        self.app = app
        self.service = service  # streamia_kit.service.Service: its store and token verifier
        self._breaker = CircuitBreaker(
            "idempotency", volume_threshold=1, window_seconds=1.0, buckets=1, reset_seconds=1.0
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope["headers"] if k == _KEY_HEADER), None)
        if raw is None:
            await self.app(scope, receive, send)
            return
        try:
            key = check_key(raw)
        except InvalidIdempotencyKey as exc:
            await send_error(send, exc.status, exc.message, exc.code)
            return
        owner = await self._owner(scope)
        if owner is None:  # a token that does not verify: the endpoint answers its 401
            await self.app(scope, receive, send)
            return
        store_key = hashlib.sha256(
            "\n".join((owner, scope["method"], scope["path"], key)).encode()
        ).hexdigest()
        claim = secrets.token_hex(8)
        ok, held = await self._store(lambda s: s.claim(store_key, claim, IN_FLIGHT_SECONDS))
        if not ok:
            self._count("store_unavailable")
            await self.app(scope, receive, send)
            return
        if held is None:
            await self._first(scope, receive, send, store_key, claim)
        elif held.pending:
            self._count("in_progress")
            await send_error(
                send,
                409,
                "A request with this Idempotency-Key is still in progress",
                "idempotency_in_progress",
                [(b"retry-after", b"1")],
            )
        elif await _digest(scope, receive) != held.digest:
            self._count("key_reused")
            await send_error(
                send,
                422,
                "This Idempotency-Key was used with another request",
                "idempotency_key_reused",
            )
        else:
            self._count("replayed")
            await send(
                {
                    "type": "http.response.start",
                    "status": held.status,
                    "headers": [*held.headers, (REPLAYED_HEADER.lower().encode(), b"true")],
                }
            )
            await send({"type": "http.response.body", "body": held.body})

    async def _first(
        self, scope: Scope, receive: Any, send: Any, store_key: str, claim: str
    ) -> None:
        """Run the request, digesting its body on the way in and keeping its answer."""
        digest = _request_hasher(scope)
        body_read = not has_body(scope["headers"])
        answer = Answer(pending=False, claim=claim)
        kept_body: list[bytes] = []
        size = 0

        async def digesting_receive() -> dict[str, Any]:
            nonlocal body_read
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                digest.update(message.get("body", b""))
                body_read = body_read or not message.get("more_body", False)
            return message

        async def keeping_send(message: dict[str, Any]) -> None:
            nonlocal size
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = [
                    (k.lower(), v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in _NOT_REPLAYED
                ]
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= MAX_KEPT_BODY:
                    kept_body.append(chunk)
            await send(message)

        kept = False
        renewing = asyncio.create_task(self._renew(store_key, claim))
        try:
            await self.app(scope, digesting_receive, keeping_send)
            if (
                0 < answer.status < 500
                and answer.status not in _NOT_KEPT
                and body_read
                and size <= MAX_KEPT_BODY
            ):
                answer.digest = digest.hexdigest()
                answer.body = b"".join(kept_body)
                kept, _ = await self._store(lambda s: s.keep(store_key, answer, KEEP_SECONDS))
                self._count("first" if kept else "store_unavailable")
        finally:
            renewing.cancel()
            if not kept:
                # Not done (5xx, cancelled) or not kept: the claim must not block a retry.
                await asyncio.shield(self._store(lambda s: s.release(store_key, claim)))

    async def _renew(self, store_key: str, claim: str) -> None:
        """Keep the claim while the request runs, however long (an upload)."""
        while True:
            await asyncio.sleep(IN_FLIGHT_SECONDS / 3)
            await self._store(lambda s: s.renew(store_key, claim, IN_FLIGHT_SECONDS))

    async def _owner(self, scope: Scope) -> str | None:
        """The verified user, or for anonymous writes (registering) the client's address."""
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if authorization is not None:
            try:
                identity = await self.service.verifier.verify_header(
                    authorization.decode("latin-1")
                )
            except StreamiaError:
                return None
            except Exception as exc:  # the revocation store is away: the endpoint says so
                _unavailable(exc)
                return None
            return f"user:{identity.id}"
        forwarded = next((v for k, v in scope["headers"] if k == b"x-forwarded-for"), None)
        if forwarded:  # the gateway appends the address it saw last
            return "client:" + forwarded.decode("latin-1").rsplit(",", 1)[-1].strip()
        client = scope.get("client")
        return f"client:{client[0] if client else ''}"

    async def _store(self, call: Any) -> tuple[bool, Any]:
        """(True, result) or, when the store is down or slow, (False, None) and a warning."""

        async def bounded() -> Any:
            async with asyncio.timeout(STORE_TIMEOUT_SECONDS):
                return await call(self.service.infra.idempotency)

        # In a task of its own: redis-py can swallow the request's cancellation (`cancellable`).
        return await cancellable(self._breaker.attempt(bounded, _unavailable))

    def _count(self, outcome: str) -> None:
        IDEMPOTENCY_REQUESTS.labels(self.service.name, outcome).inc()


def _unavailable(exc: Exception) -> None:
    log.warning("idempotency_store_unavailable", error=f"{type(exc).__name__}: {exc}"[:300])


def _request_hasher(scope: Scope) -> Any:
    digest = hashlib.sha256(scope.get("query_string", b""))
    digest.update(b"\n")
    return digest


async def _digest(scope: Scope, receive: Any) -> str:
    """The digest of a request that will not be run: its body is read and dropped."""
    digest = _request_hasher(scope)
    if has_body(scope["headers"]):
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            digest.update(message.get("body", b""))
            if not message.get("more_body", False):
                break
    return digest.hexdigest()
