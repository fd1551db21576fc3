"""Revocations outlive a restart in embedded mode and share one key scheme in Redis."""

from __future__ import annotations

import asyncio
import stat
import sys
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
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
from streamia_kit.testing import (
    REDIS,
    Stack,
    TcpProxy,
    cancel_at_each_step,
    require_infrastructure,
    stray_tasks,
    wait_for,
)


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


def _store(url: str, namespace: str, **options: Any) -> tuple[Redis, RedisRevocationStore]:
    # The timeouts the services' and the gateway's pools use.
    redis = Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    return redis, RedisRevocationStore(redis, namespace=namespace, **options)


@asynccontextmanager
async def _through_proxy(**options: Any) -> AsyncIterator[tuple[TcpProxy, Any, Any]]:
    """A reader whose Redis is behind a proxy the test cuts, and a writer (the users
    service) that reaches Redis directly: the partition case."""
    require_infrastructure()
    target = urlparse(REDIS)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    namespace = f"t{time.time_ns()}"
    reader_redis, reader = _store(f"redis://127.0.0.1:{proxy.port}", namespace, **options)
    writer_redis, writer = _store(REDIS, namespace)
    try:
        await reader.start()
        await wait_for(reader.in_sync, 5, message="the reader's first sync")
        yield proxy, reader, writer
    finally:
        await reader.close()
        await writer.close()
        await reader_redis.aclose()
        await writer_redis.aclose()
        await proxy.close()


@asynccontextmanager
async def _alone_behind_proxy() -> AsyncIterator[tuple[TcpProxy, RedisRevocationStore]]:
    """A store whose Redis is behind a proxy the test cuts, nobody else writing."""
    require_infrastructure()
    target = urlparse(REDIS)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    redis, store = _store(f"redis://127.0.0.1:{proxy.port}", f"t{time.time_ns()}")
    try:
        yield proxy, store
    finally:
        await store.close()
        await redis.aclose()
        await proxy.close()


async def _seen(store: RedisRevocationStore, jti: str) -> bool:
    return await store.is_revoked(jti, "someone", time.time())


@pytest.mark.distributed
async def test_checks_ask_redis_nothing_and_a_revocation_is_seen_by_another_store():
    async with _through_proxy() as (proxy, reader, writer):
        await writer.revoke_token("gone", time.time() + 60)
        await writer.revoke_user_before("changed", time.time())
        await wait_for(lambda: _seen(reader, "gone"), 1.0, 0.005, "the revocation mirrored")
        await wait_for(
            lambda: reader.is_revoked("other", "changed", time.time() - 1), 1.0, 0.005, "marker"
        )
        assert not await reader.is_revoked("other", "changed", time.time() + 1)
        # A thousand checks put no command on the wire (only the heartbeat's ping may).
        await proxy.slow(5.0)
        began = time.monotonic()
        for _ in range(1000):
            assert not await reader.is_revoked("fine", "someone-else", time.time())
        assert time.monotonic() - began < 0.5
        assert proxy.delayed_chunks <= 1, proxy.delayed_chunks


@pytest.mark.distributed
async def test_a_user_marker_never_moves_back_in_time():
    async with _through_proxy() as (_, reader, writer):
        now = time.time()
        await writer.revoke_user_before("u", now)
        await writer.revoke_user_before("u", now - 100)  # a late, older write
        await wait_for(lambda: reader.is_revoked("j", "u", now - 1), 1.0, 0.005, "mirrored")
        assert await reader.is_revoked("j", "u", now - 50)
        fresh_redis, fresh = _store(REDIS, reader._namespace)  # loads from the index
        try:
            assert await fresh.is_revoked("j", "u", now - 50)
            assert fresh.reloads == 1
        finally:
            await fresh.close()
            await fresh_redis.aclose()


@pytest.mark.distributed
@pytest.mark.parametrize("fault", ["slow", "black_hole"])
async def test_a_logout_cancelled_while_redis_is_slow_ends_at_once(
    distributed_stack: Stack, redis_proxy: TcpProxy, fault: str
) -> None:
    """A revocation is written on the request's path (logout, password change): cancelled
    at any moment, the request ends then, not after Redis's answer or timeout."""
    redis = Redis.from_url(f"redis://127.0.0.1:{redis_proxy.port}/0", socket_timeout=2.0)
    store = RedisRevocationStore(redis, namespace=distributed_stack.namespace)
    before = stray_tasks()
    try:
        await redis.ping()  # a pooled connection from before the fault
        await (redis_proxy.slow(0.3) if fault == "slow" else redis_proxy.black_hole())
        await cancel_at_each_step(lambda: store.revoke_token("logged-out", time.time() + 60))
        await wait_for(lambda: not stray_tasks() - before, timeout=5.0, message="no task left")
    finally:
        await redis_proxy.restore()
        await redis.aclose()


@pytest.mark.distributed
@pytest.mark.parametrize("fault", ["cut", "black_hole"])
async def test_during_a_redis_outage_tokens_are_checked_against_the_last_sync(fault: str):
    """Issue 13: a Redis blip no longer logs everybody out. A token revoked before it stays
    refused; one revoked during it (Redis reached by the writer only: a partition) is seen
    once the reader is back, and so is one revoked after."""
    async with _through_proxy() as (proxy, reader, writer):
        await writer.revoke_token("before", time.time() + 60)
        await wait_for(lambda: _seen(reader, "before"), 1.0, 0.005, "mirrored")
        reloads = reader.reloads
        await (proxy.cut() if fault == "cut" else proxy.black_hole())
        await writer.revoke_token("during", time.time() + 60)
        ends = time.monotonic() + 4.0  # past the 3 s in which a silent link is noticed
        while time.monotonic() < ends:
            began = time.monotonic()
            assert await _seen(reader, "before")
            assert not await _seen(reader, "fine")
            assert time.monotonic() - began < 0.05
            await asyncio.sleep(0.05)
        assert not await _seen(reader, "during")  # it could not have arrived
        await proxy.restore()
        restored = time.monotonic()
        await wait_for(lambda: _seen(reader, "during"), 5, 0.01, "the reload after the outage")
        assert reader.reloads == reloads + 1
        assert time.monotonic() - restored < 2.0
        await writer.revoke_token("after", time.time() + 60)
        await wait_for(lambda: _seen(reader, "after"), 1.0, 0.005, "a revocation after it")


@pytest.mark.distributed
@pytest.mark.parametrize("fault", ["cut", "black_hole"])
async def test_past_the_grace_checks_are_refused_until_redis_is_back(fault: str):
    async with _through_proxy(grace_seconds=1.0) as (proxy, reader, _):
        await (proxy.cut() if fault == "cut" else proxy.black_hole())
        lost = time.monotonic()

        async def refused() -> bool:
            try:
                await _seen(reader, "fine")
            except RevocationsUnavailable:
                return True
            return False

        await wait_for(refused, 10, 0.02, "checks refused past the grace")
        # The last sync was within a heartbeat of the fault; a silent link is noticed within
        # three heartbeats, then the grace runs.
        assert 1.0 < time.monotonic() - lost < 3.0 + 1.0 + 0.5
        assert reader.sync_age() > 1.0 + 3.0  # what the gateway's gauge reports
        await proxy.restore()
        await wait_for(reader.in_sync, 5, 0.02, "in sync again")
        assert reader.in_sync() and not await _seen(reader, "fine")
        assert reader.sync_age() < 3.0


@pytest.mark.distributed
async def test_a_store_that_never_synced_refuses_checks_after_one_bounded_wait():
    async with _alone_behind_proxy() as (proxy, store):
        await proxy.black_hole()
        for bound in (2.5, 0.05):  # the first waits for the first sync; the next do not
            began = time.monotonic()
            with pytest.raises(RevocationsUnavailable):
                await _seen(store, "any")
            assert time.monotonic() - began < bound
        await proxy.restore()
        await wait_for(store.in_sync, 5, 0.02, "the first sync once Redis answers")
        assert not await _seen(store, "any")


@pytest.mark.distributed
async def test_a_redis_blip_as_the_process_starts_is_waited_out_by_the_first_check():
    """Redis refuses connections for half a second as the store starts: the first check waits
    for the sync attempts retried meanwhile instead of refusing after the first failure."""
    async with _alone_behind_proxy() as (proxy, store):
        await proxy.cut()
        check = asyncio.create_task(_seen(store, "any"))
        await asyncio.sleep(0.5)  # the outage's length, not a wait for a condition
        assert not check.done()
        await proxy.restore()
        began = time.monotonic()
        assert not await check  # answered from the first sync, not refused
        assert time.monotonic() - began < 2.0
        assert store.in_sync()


READER = """
import asyncio, sys, time
from redis.asyncio import Redis
from streamia_kit.auth import RedisRevocationStore

async def main(url, namespace):
    redis = Redis.from_url(url)
    store = RedisRevocationStore(redis, namespace=namespace)
    await store.start()
    while not store.in_sync():
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    while not await store.is_revoked("watched", "someone", time.time()):
        await asyncio.sleep(0.002)
    print("seen", time.time(), flush=True)
    await store.close()
    await redis.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def _line(process: asyncio.subprocess.Process, prefix: bytes) -> bytes:
    """What follows `prefix` on the next line that starts with it (log lines skipped)."""
    assert process.stdout is not None
    while line := await process.stdout.readline():
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise AssertionError(f"the reader ended before printing {prefix!r}")


@pytest.mark.distributed
async def test_a_revocation_reaches_another_process_within_a_second():
    require_infrastructure()
    namespace = f"t{time.time_ns()}"
    reader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", READER, REDIS, namespace, stdout=PIPE
    )
    redis, writer = _store(REDIS, namespace)
    try:
        async with asyncio.timeout(30):
            await _line(reader, b"ready")
        revoked_at = time.time()
        await writer.revoke_token("watched", revoked_at + 60)
        async with asyncio.timeout(5):
            seen_at = float(await _line(reader, b"seen "))
        assert seen_at - revoked_at < 1.0, seen_at - revoked_at
    finally:
        if reader.returncode is None:
            reader.kill()
        await reader.wait()
        await writer.close()
        await redis.aclose()
