"""Global and failed-login rate limits, in memory and on the real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest

from gateway_harness import LOGIN_PASSWORD, RunningGateway

TOO_MANY = "Too many requests, please try again later."
TOO_MANY_LOGINS = "Too many login attempts, please try again later."


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


async def _login(
    http: aiohttp.ClientSession, gw: RunningGateway, email: str, password: str, ip: str = ""
) -> aiohttp.ClientResponse:
    headers = {"X-Forwarded-For": ip} if ip else {}
    async with http.post(
        gw.url + "/api/users/login", json={"email": email, "password": password}, headers=headers
    ) as resp:
        await resp.read()
        return resp


async def test_the_sixth_failed_login_is_refused(limited, http: aiohttp.ClientSession) -> None:
    gw = await limited()
    email = f"{uuid.uuid4().hex}@example.com"
    for attempt in range(5):
        resp = await _login(http, gw, email, "wrong")
        assert resp.status == 401, attempt
        assert resp.headers["RateLimit-Limit"] == "5"
        assert resp.headers["RateLimit-Remaining"] == str(4 - attempt)
    async with http.post(
        gw.url + "/api/users/login", json={"email": email.upper(), "password": LOGIN_PASSWORD}
    ) as resp:
        assert resp.status == 429  # the same address in other case counts too
        assert await resp.json() == {
            "error": TOO_MANY_LOGINS,
            "message": TOO_MANY_LOGINS,
            "code": "rate_limited",
        }
        assert 0 < int(resp.headers["Retry-After"]) <= 600
        assert resp.headers["RateLimit-Remaining"] == "0"
        assert 0 < int(resp.headers["RateLimit-Reset"]) <= 600


async def test_successful_logins_are_not_counted(limited, http: aiohttp.ClientSession) -> None:
    gw = await limited()
    email = f"{uuid.uuid4().hex}@example.com"
    for _ in range(7):
        resp = await _login(http, gw, email, LOGIN_PASSWORD)
        assert resp.status == 200
        assert resp.headers["RateLimit-Remaining"] == "5"


async def test_failed_logins_for_one_email_do_not_lock_out_another(
    limited, http: aiohttp.ClientSession
) -> None:
    gw = await limited()
    victim = f"{uuid.uuid4().hex}@example.com"
    for _ in range(5):
        await _login(http, gw, victim, "wrong")
    assert (await _login(http, gw, victim, LOGIN_PASSWORD)).status == 429
    assert (await _login(http, gw, f"other-{victim}", LOGIN_PASSWORD)).status == 200


async def test_an_oversized_login_body_is_refused(limited, http: aiohttp.ClientSession) -> None:
    gw = await limited()
    async with http.post(
        gw.url + "/api/users/login",
        data=b"{" + b" " * 20_000 + b"}",
        headers={"Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 413
        assert (await resp.json())["code"] == "payload_too_large"


async def test_the_global_limit_refuses_the_request_over_it(
    limited, http: aiohttp.ClientSession
) -> None:
    gw = await limited(rate_limit_global="3/minute")
    ip = f"10.{uuid.uuid4().int % 250}.0.1"  # uvicorn trusts X-Forwarded-For from 127.0.0.1
    for remaining in (2, 1, 0):
        async with http.get(gw.url + "/api/movies", headers={"X-Forwarded-For": ip}) as resp:
            assert resp.status == 200
            assert resp.headers["RateLimit-Limit"] == "3"
            assert resp.headers["RateLimit-Remaining"] == str(remaining)
    async with http.get(gw.url + "/api/movies", headers={"X-Forwarded-For": ip}) as resp:
        assert resp.status == 429
        assert await resp.json() == {"error": TOO_MANY, "message": TOO_MANY, "code": "rate_limited"}
        assert int(resp.headers["Retry-After"]) >= 1
        assert resp.headers["RateLimit-Remaining"] == "0"
    other_ip = ip.replace(".0.1", ".0.2")
    async with http.get(gw.url + "/api/movies", headers={"X-Forwarded-For": other_ip}) as resp:
        assert resp.status == 200


async def test_concurrent_requests_never_pass_the_global_limit(
    limited, http: aiohttp.ClientSession
) -> None:
    gw = await limited(rate_limit_global="5/minute")
    headers = {"X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.1.1"}

    async def status() -> int:
        async with http.get(gw.url + "/api/movies", headers=headers) as resp:
            await resp.read()
            return resp.status

    statuses = await asyncio.gather(*(status() for _ in range(20)))
    assert sorted(statuses) == [200] * 5 + [429] * 15


async def test_concurrent_requests_from_many_ips_are_each_counted_alone(
    limited, http: aiohttp.ClientSession
) -> None:
    """With Redis the hits of several clients share a round trip: each keeps its own count."""
    gw = await limited(rate_limit_global="3/minute")
    ips = [f"10.{uuid.uuid4().int % 250}.2.{n}" for n in range(1, 5)]

    async def status(ip: str) -> int:
        async with http.get(gw.url + "/api/movies", headers={"X-Forwarded-For": ip}) as resp:
            await resp.read()
            return resp.status

    statuses = await asyncio.gather(*(status(ip) for _ in range(8) for ip in ips))
    by_ip = {ip: sorted(statuses[i::4]) for i, ip in enumerate(ips)}
    assert by_ip == {ip: [200] * 3 + [429] * 5 for ip in ips}


@pytest.mark.distributed
@pytest.mark.parametrize("fault", ["cut", "black_hole"])
async def test_while_redis_is_away_the_global_limit_lets_traffic_through_then_counts_again(
    start_gateway, redis_proxy, http: aiohttp.ClientSession, fault: str
) -> None:
    """Refused at once (cut) or unanswered (black hole: the 1 s socket timeout): the requests
    waiting on the failed round trip all go through when it fails, none waits for another."""
    gw = await start_gateway(
        redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0",
        rate_limit_key_prefix=f"gw-test-{uuid.uuid4().hex}",
        rate_limit_global="2/minute",
    )
    headers = {"X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.3.1"}

    async def get() -> aiohttp.ClientResponse:
        async with http.get(gw.url + "/api/movies", headers=headers) as resp:
            await resp.read()
            return resp

    assert (await get()).headers["RateLimit-Remaining"] == "1"
    await getattr(redis_proxy, fault)()
    began = time.monotonic()
    answers = await asyncio.gather(*(get() for _ in range(5)))
    assert [r.status for r in answers] == [200] * 5  # open, not failed
    assert all("RateLimit-Limit" not in r.headers for r in answers)
    assert time.monotonic() - began < 1.8  # one socket timeout at most, not one per batch
    await redis_proxy.restore()
    # Once the pause after the failure is over, Redis counts again: one hit left, then 429.
    deadline = time.monotonic() + 5
    while "RateLimit-Limit" not in (resp := await get()).headers:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert resp.status == 200 and resp.headers["RateLimit-Remaining"] == "0"
    assert (await get()).status == 429


async def test_health_is_never_rate_limited(limited, http: aiohttp.ClientSession) -> None:
    gw = await limited(rate_limit_global="1/minute")
    for _ in range(3):
        async with http.get(gw.url + "/health") as resp:
            assert resp.status == 200


async def test_disabled_rate_limits_add_no_headers(limited, http: aiohttp.ClientSession) -> None:
    gw = await limited(rate_limits_enabled=False, rate_limit_global="1/minute")
    for _ in range(3):
        async with http.get(gw.url + "/api/movies") as resp:
            assert resp.status == 200
            assert "RateLimit-Limit" not in resp.headers
    for _ in range(7):
        assert (await _login(http, gw, "x@example.com", "wrong")).status == 401
