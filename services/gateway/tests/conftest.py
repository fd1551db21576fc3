"""Fixtures: a fake upstream, gateways in front of it, a signing key and an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway_harness import (
    FakeUpstream,
    RunningGateway,
    gateway_settings,
    run_gateway,
    run_upstream,
)
from streamia_kit.auth import MemoryRevocationStore, RevocationStore, SigningKey
from streamia_kit.testing import REDIS, REQUIRE_INFRA


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


@pytest.fixture
async def upstream(signing_key: SigningKey) -> AsyncIterator[FakeUpstream]:
    async with run_upstream(signing_key) as fake:
        yield fake


GatewayFactory = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def start_gateway(upstream: FakeUpstream) -> AsyncIterator[GatewayFactory]:
    """Starts a gateway in front of the fake upstream; keyword arguments override settings."""
    stack: list[Any] = []

    async def start(revocations: RevocationStore | None = None, **overrides: Any) -> RunningGateway:
        settings = gateway_settings(upstream.url, **overrides)
        if revocations is None and settings.redis_url is None:
            revocations = MemoryRevocationStore()  # else the app builds its Redis store
        cm = run_gateway(settings, revocations)
        running = await cm.__aenter__()
        stack.append(cm)
        return running

    yield start
    for cm in reversed(stack):
        await cm.__aexit__(None, None, None)


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> RunningGateway:
    return await start_gateway()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


@pytest.fixture
def redis_url() -> str:
    """The test Redis (STREAMIA_TEST_REDIS): skipped if down, failed if STREAMIA_REQUIRE_INFRA=1."""
    import redis

    url = REDIS
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except Exception as exc:
        if REQUIRE_INFRA:
            pytest.fail(f"Redis at {url} is required (STREAMIA_REQUIRE_INFRA=1): {exc!r}")
        pytest.skip(f"Redis at {url} is not reachable")
    finally:
        client.close()
    return url
