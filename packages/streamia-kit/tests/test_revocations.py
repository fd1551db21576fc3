"""Revocations outlive a restart in embedded mode and share one key scheme in Redis."""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from redis.asyncio import Redis

from streamia_kit.auth import (
    RedisRevocationStore,
    RevocationsUnavailable,
    SigningKey,
    SqliteRevocationStore,
)
from streamia_kit.config import ServiceSettings
from streamia_kit.db import ensure_database
from streamia_kit.infra import Infrastructure
from streamia_kit.testing import REDIS, Stack, TcpProxy, require_infrastructure, wait_for


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_embedded_revocations_survive_a_restart(tmp_path):
    path = tmp_path / "revocations.sqlite"
    before = SqliteRevocationStore(path)
    now = time.time()
    await before.revoke_token("logged-out", now + 3600)
    await before.revoke_user_before("changed-password", now)

    after = SqliteRevocationStore(path)  # a new process reads the same file
    assert await after.is_revoked("logged-out", "someone", now)
    assert await after.is_revoked("other-jti", "changed-password", now - 1)
    assert not await after.is_revoked("other-jti", "changed-password", now + 1)
    assert not await after.is_revoked("other-jti", "someone", now)


async def test_embedded_revocations_are_dropped_once_their_tokens_have_expired(tmp_path):
    path = tmp_path / "revocations.sqlite"
    await SqliteRevocationStore(path).revoke_token("long-gone", time.time() - 1)
    await SqliteRevocationStore(path, max_token_lifetime=-1).revoke_user_before("u", time.time())

    reloaded = SqliteRevocationStore(path)
    assert not await reloaded.is_revoked("long-gone", "nobody", 0)
    assert not await reloaded.is_revoked("any", "u", 0)


@pytest.mark.distributed
async def test_a_namespaced_revocation_is_seen_by_readers_of_that_namespace_only(
    distributed_stack: Stack,
):
    settings = ServiceSettings(**distributed_stack.overrides())
    writer = Infrastructure.from_settings(settings)  # what the users service writes with
    redis = Redis.from_url(REDIS)
    try:
        await writer.revocations.revoke_token("jti-1", time.time() + 60)
        same = RedisRevocationStore(redis, namespace=distributed_stack.namespace)
        other = RedisRevocationStore(redis, namespace=distributed_stack.namespace + "x")
        assert await same.is_revoked("jti-1", "u", 0)
        assert not await other.is_revoked("jti-1", "u", 0)
    finally:
        await writer.close()
        await redis.aclose()


async def test_databases_keys_and_revocations_are_created_readable_by_their_owner_only(
    tmp_path,
):
    data = tmp_path / "data"
    await ensure_database(f"sqlite+aiosqlite:///{data / 'users.sqlite'}")
    SigningKey.load_or_create(data / "keys" / "users.pem")
    await SqliteRevocationStore(data / "revocations.sqlite").revoke_token("j", time.time() + 9)

    assert mode(data) == mode(data / "keys") == 0o700
    for name in ("users.sqlite", "keys/users.pem", "revocations.sqlite"):
        assert mode(data / name) == 0o600, name


@pytest.mark.distributed
@pytest.mark.parametrize("fault", ["cut", "black_hole"])
async def test_a_redis_outage_refuses_checks_at_once_and_its_end_is_seen_within_a_second(
    fault: str,
):
    require_infrastructure()
    target = urlparse(REDIS)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    # The timeouts the services' and the gateway's pools use.
    redis = Redis.from_url(
        f"redis://127.0.0.1:{proxy.port}", socket_connect_timeout=1.0, socket_timeout=1.0
    )
    store = RedisRevocationStore(redis, namespace=f"t{time.time_ns()}")

    async def timed_check() -> tuple[float, BaseException | None]:
        began = time.monotonic()
        try:
            await store.is_revoked("jti", "user", time.time())
        except RevocationsUnavailable as exc:
            return time.monotonic() - began, exc
        return time.monotonic() - began, None

    try:
        assert (await timed_check())[1] is None
        await (proxy.cut() if fault == "cut" else proxy.black_hole())
        # 20 concurrent requests: none waits more than the one check's bound (before, a
        # black hole queued them behind each other's 1 s connects: the 20th waited ~20 s).
        results = await asyncio.gather(*(timed_check() for _ in range(20)))
        assert all(isinstance(exc, RevocationsUnavailable) for _, exc in results), results
        assert max(spent for spent, _ in results) < 2.5, results
        # Right after a failed check (this one may be the breaker's probe), the next one is
        # refused without asking Redis.
        await timed_check()
        spent, exc = await timed_check()
        assert isinstance(exc, RevocationsUnavailable) and spent < 0.1, spent
        await proxy.restore()
        restored = time.monotonic()

        async def answered() -> bool:
            return (await timed_check())[1] is None

        await wait_for(answered, timeout=5, interval=0.02, message="a check answered")
        assert time.monotonic() - restored < 1.0
    finally:
        await redis.aclose()
        await proxy.close()
