"""Revocations outlive a restart in embedded mode and share one key scheme in Redis."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from streamia_kit.auth import RedisRevocationStore, SigningKey, SqliteRevocationStore
from streamia_kit.config import ServiceSettings
from streamia_kit.db import ensure_database
from streamia_kit.infra import Infrastructure
from streamia_kit.testing import REDIS, Stack


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
