"""Routes that check a password: attempts reserved before the check, limits per IP, account
and IP + account, a per-IP concurrency cap, their own timeout, and a breaker that load
shedding cannot open; the client IP cannot be chosen by the client."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest

from gateway_harness import LOGIN_PASSWORD, FakeUpstream, RunningGateway
from streamia_kit.auth import SigningKey
from streamia_kit.testing import wait_for


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.distributed)])
async def limited(request: pytest.FixtureRequest, start_gateway) -> Any:
    """A gateway factory whose rate-limit storage is in memory or on the real Redis."""
    extra: dict[str, Any] = {}
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        extra = {"redis_url": url, "rate_limit_key_prefix": f"gw-test-{uuid.uuid4().hex}"}

    async def start(**overrides: Any) -> RunningGateway:
        return await start_gateway(**{**extra, **overrides})

    return start


def _email() -> str:
    return f"{uuid.uuid4().hex[:12]}@example.com"


def _ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"


async def _login(
    http: aiohttp.ClientSession, gw: RunningGateway, email: str, password: str, ip: str
) -> int:
    async with http.post(
        gw.url + "/api/users/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": ip},
    ) as resp:
        await resp.read()
        return resp.status


@pytest.mark.parametrize("attempts", [30, 100])
async def test_concurrent_wrong_passwords_for_one_email_reach_the_check_at_most_five_times(
    limited, http: aiohttp.ClientSession, upstream: FakeUpstream, attempts: int
) -> None:
    gw = await limited(credential_concurrency_per_ip=1000)  # the cap would hide the race
    email, ip = _email(), _ip()
    statuses = await asyncio.gather(
        *(_login(http, gw, email, "wrong", ip) for _ in range(attempts))
    )
    assert upstream.password_checks <= 5
    assert statuses.count(401) == upstream.password_checks
    assert statuses.count(429) == attempts - upstream.password_checks


@pytest.mark.distributed
async def test_with_redis_down_concurrent_guesses_are_still_limited_in_the_process(
    start_gateway, redis_proxy, http: aiohttp.ClientSession, upstream: FakeUpstream
) -> None:
    """The shared count lives in Redis; while Redis is down (or times out under load) the
    gateway's own count still refuses the sixth guess instead of letting all through."""
    gw = await start_gateway(
        redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0",
        rate_limit_key_prefix=f"gw-test-{uuid.uuid4().hex}",
        credential_concurrency_per_ip=1000,
    )
    await redis_proxy.cut()
    email, ip = _email(), _ip()
    statuses = await asyncio.gather(*(_login(http, gw, email, "wrong", ip) for _ in range(30)))
    assert upstream.password_checks <= 5
    assert statuses.count(401) == upstream.password_checks
    assert statuses.count(429) == 30 - upstream.password_checks
    # A right password still gets through (and gives its reservation back).
    await redis_proxy.restore()
    assert await _login(http, gw, _email(), LOGIN_PASSWORD, _ip()) == 200


async def test_wrong_passwords_across_many_emails_from_one_ip_are_limited(
    limited, http: aiohttp.ClientSession
) -> None:
    gw = await limited(rate_limit_login_ip="3/10 minutes")
    sprayer, neighbour = _ip(), _ip()
    for _ in range(3):
        assert await _login(http, gw, _email(), "wrong", sprayer) == 401
    assert await _login(http, gw, _email(), LOGIN_PASSWORD, sprayer) == 429
    assert await _login(http, gw, _email(), "wrong", neighbour) == 401


async def test_one_account_tried_from_many_ips_is_slowed_not_locked(
    limited, http: aiohttp.ClientSession
) -> None:
    gw = await limited(rate_limit_login_account="3/2 seconds")
    victim = _email()
    for _ in range(3):
        assert await _login(http, gw, victim, "wrong", _ip()) == 401
    async with http.post(
        gw.url + "/api/users/login",
        json={"email": victim, "password": LOGIN_PASSWORD},
        headers={"X-Forwarded-For": _ip()},
    ) as resp:
        assert resp.status == 429
        assert 1 <= int(resp.headers["Retry-After"]) <= 2
    deadline = time.monotonic() + 5  # the owner gets in once the window has moved on
    while await _login(http, gw, victim, LOGIN_PASSWORD, _ip()) != 200:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/api/users/change-password", {"currentPassword": "guess", "newPassword": "x"}),
        ("DELETE", "/api/users/me", {"password": "guess"}),
    ],
)
async def test_a_wrong_password_inside_a_session_counts_like_a_failed_login(
    limited,
    http: aiohttp.ClientSession,
    signing_key: SigningKey,
    method: str,
    path: str,
    body: dict[str, str],
) -> None:
    gw = await limited()
    email, ip = _email(), _ip()
    token = signing_key.issue(f"u-{uuid.uuid4().hex}", email, "user", 600)
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": ip}
    for _ in range(5):
        async with http.request(method, gw.url + path, json=body, headers=headers) as resp:
            assert resp.status == 400
    async with http.request(method, gw.url + path, json=body, headers=headers) as resp:
        assert resp.status == 429
    assert await _login(http, gw, email.upper(), LOGIN_PASSWORD, ip) == 429  # same account


async def test_one_ip_may_have_only_a_few_password_checks_in_flight(
    start_gateway, http: aiohttp.ClientSession, upstream: FakeUpstream
) -> None:
    gw = await start_gateway(credential_concurrency_per_ip=2)
    ip = _ip()
    held = [
        asyncio.create_task(_login(http, gw, f"slow-{n}@example.com", "wrong", ip))
        for n in range(2)
    ]
    try:
        await wait_for(lambda: upstream.password_checks == 2, message="two checks in flight")
        started = time.monotonic()
        assert await _login(http, gw, _email(), "wrong", ip) == 429
        assert time.monotonic() - started < 1  # refused at once, not queued
        assert await _login(http, gw, _email(), "wrong", _ip()) == 401  # other IPs go on
    finally:
        upstream.release_slow.set()
    assert await asyncio.gather(*held) == [401, 401]
    assert await _login(http, gw, _email(), "wrong", ip) == 401


async def test_credential_routes_wait_longer_than_the_breaker_timeout(
    start_gateway, http: aiohttp.ClientSession, upstream: FakeUpstream
) -> None:
    gw = await start_gateway(breaker_timeout_seconds=0.2, credential_timeout_seconds=5)
    upstream.slow_seconds = 0.6
    assert await _login(http, gw, "slow-but-fine@example.com", "wrong", _ip()) == 401


async def test_load_shed_by_the_users_service_never_opens_its_breaker(
    start_gateway, http: aiohttp.ClientSession, signing_key: SigningKey
) -> None:
    gw = await start_gateway(breaker_volume_threshold=5, credential_concurrency_per_ip=100)
    statuses = await asyncio.gather(
        *(_login(http, gw, f"busy-{n}@example.com", "x", _ip()) for n in range(30))
    )
    assert set(statuses) == {503}
    token = signing_key.issue("u-1", "me@example.com", "user", 600)
    async with http.get(
        gw.url + "/api/users/me", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status == 200
    assert gw.app.breakers["users"].state.name == "CLOSED"


async def test_a_spoofed_x_forwarded_for_does_not_change_the_client_ip(
    start_gateway, http: aiohttp.ClientSession
) -> None:
    """Without trusted proxies the TCP peer is the client; behind one, only the address the
    proxy appended counts, whatever the client wrote before it."""
    for trusted, real in (([], None), (["127.0.0.1/32"], _ip())):
        gw = await start_gateway(rate_limit_global="3/minute", trusted_proxies=trusted)
        statuses = []
        for _ in range(4):
            chain = _ip() if real is None else f"{_ip()}, {real}"
            async with http.get(gw.url + "/api/movies", headers={"X-Forwarded-For": chain}) as r:
                statuses.append(r.status)
        assert statuses == [200, 200, 200, 429], trusted
