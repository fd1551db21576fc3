"""JWT verification at the gateway, identity headers and revocation."""

from __future__ import annotations

import base64
import json
import re
import time

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway_harness import FakeUpstream, RunningGateway
from streamia_kit.auth import INVALID_TOKEN, NO_TOKEN, SigningKey
from streamia_kit.infra import random_namespace
from streamia_kit.testing import wait_for

FORGED_HEADERS = {
    "X-Streamia-User-Id": "attacker",
    "X-Streamia-User-Email": "evil@example.com",
    "X-Streamia-User-Role": "admin",
    "X-Streamia-Internal-Secret": "guess",
    "X-Streamia-Deadline-Ms": "999999",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tamper(token: str, **claims: object) -> str:
    """The token with its payload changed but the original signature kept."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    raw = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


async def _get(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> tuple[int, dict]:
    async with http.get(url, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_client_sent_identity_headers_never_reach_the_upstream(
    upstream: FakeUpstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    status, body = await _get(http, gateway.url + "/api/favorites", FORGED_HEADERS)
    assert status == 200
    names = [k for k, _ in body["header_list"] if k.startswith("x-streamia-")]
    assert names == ["x-streamia-deadline-ms"]  # the gateway's own, below


async def test_the_upstream_is_told_how_long_the_gateway_waits_for_its_answer(
    upstream: FakeUpstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    status, body = await _get(http, gateway.url + "/api/favorites", FORGED_HEADERS)
    assert status == 200
    # breaker_timeout_seconds of the harness (3 s), never the client's 999999
    assert body["headers"]["x-streamia-deadline-ms"] == "3000"


async def test_a_verified_token_sets_the_identity_headers(
    upstream: FakeUpstream,
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    signing_key: SigningKey,
) -> None:
    token = signing_key.issue("u-42", "ada@example.com", "user", 3600)
    status, body = await _get(
        http, gateway.url + "/api/favorites", {**FORGED_HEADERS, **bearer(token)}
    )
    assert status == 200
    headers = body["headers"]
    assert headers["x-streamia-user-id"] == "u-42"
    assert headers["x-streamia-user-email"] == "ada@example.com"
    assert headers["x-streamia-user-role"] == "user"
    assert "x-streamia-internal-secret" not in headers
    assert headers["authorization"] == f"Bearer {token}"  # services verify too
    names = [k for k, _ in body["header_list"]]
    assert names.count("x-streamia-user-id") == 1


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer a b", "Basic dXNlcjpwYXNz"])
async def test_a_malformed_authorization_header_is_refused(
    gateway: RunningGateway, http: aiohttp.ClientSession, header: str
) -> None:
    status, body = await _get(http, gateway.url + "/api/favorites", {"Authorization": header})
    assert status == 401
    assert body["error"] == body["message"] == NO_TOKEN
    assert body["code"] == "no_token"


async def test_an_expired_token_is_refused(
    upstream: FakeUpstream,
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    signing_key: SigningKey,
) -> None:
    token = signing_key.issue("u-1", "a@example.com", "user", 60, now=time.time() - 3600)
    status, body = await _get(http, gateway.url + "/api/favorites", bearer(token))
    assert (status, body["message"], body["code"]) == (401, INVALID_TOKEN, "invalid_token")
    assert upstream.seen == []


async def test_a_tampered_token_is_refused(
    upstream: FakeUpstream,
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    signing_key: SigningKey,
) -> None:
    token = _tamper(signing_key.issue("u-1", "a@example.com", "user", 3600), role="admin")
    status, body = await _get(http, gateway.url + "/api/favorites", bearer(token))
    assert (status, body["message"]) == (401, INVALID_TOKEN)
    assert upstream.seen == []


async def test_a_token_signed_by_another_key_is_refused(
    upstream: FakeUpstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    stranger = SigningKey(Ed25519PrivateKey.generate())
    token = stranger.issue("u-1", "a@example.com", "admin", 3600)
    status, body = await _get(http, gateway.url + "/api/favorites", bearer(token))
    assert (status, body["message"]) == (401, INVALID_TOKEN)


async def test_an_unsigned_token_is_refused(
    gateway: RunningGateway, http: aiohttp.ClientSession, signing_key: SigningKey
) -> None:
    claims = {"sub": "u-1", "iat": time.time(), "exp": time.time() + 60, "jti": "j"}
    token = jwt.encode(claims, None, algorithm="none", headers={"kid": signing_key.kid})
    status, body = await _get(http, gateway.url + "/api/favorites", bearer(token))
    assert (status, body["message"]) == (401, INVALID_TOKEN)


async def test_a_revoked_token_is_refused_on_the_next_request(
    gateway: RunningGateway, http: aiohttp.ClientSession, signing_key: SigningKey
) -> None:
    token = signing_key.issue("u-7", "b@example.com", "user", 3600)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (await _get(http, gateway.url + "/api/favorites", bearer(token)))[0] == 200

    await gateway.revocations.revoke_token(claims["jti"], claims["exp"])

    status, body = await _get(http, gateway.url + "/api/favorites", bearer(token))
    assert (status, body["message"]) == (401, INVALID_TOKEN)


async def test_signing_out_everywhere_refuses_earlier_tokens_only(
    gateway: RunningGateway, http: aiohttp.ClientSession, signing_key: SigningKey
) -> None:
    old = signing_key.issue("u-8", "c@example.com", "user", 3600, now=time.time() - 10)
    await gateway.revocations.revoke_user_before("u-8", time.time() - 5)
    new = signing_key.issue("u-8", "c@example.com", "user", 3600)
    assert (await _get(http, gateway.url + "/api/favorites", bearer(old)))[0] == 401
    assert (await _get(http, gateway.url + "/api/favorites", bearer(new)))[0] == 200


async def test_requests_without_a_token_pass_through(
    upstream: FakeUpstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    status, body = await _get(http, gateway.url + "/api/movies", {})
    assert status == 200
    assert "authorization" not in body["headers"]


async def test_a_stale_token_does_not_block_logging_in(
    upstream: FakeUpstream,
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    signing_key: SigningKey,
) -> None:
    stale = signing_key.issue("u-1", "a@example.com", "user", 60, now=time.time() - 3600)
    async with http.post(
        gateway.url + "/api/users/register", json={"email": "a@example.com"}, headers=bearer(stale)
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert "authorization" not in body["headers"]  # an unverified token is not passed on
    assert "x-streamia-user-id" not in body["headers"]


@pytest.mark.distributed
@pytest.mark.parametrize("namespace", ["", random_namespace()])
async def test_a_logout_recorded_in_redis_is_refused_by_the_gateway(
    start_gateway,
    http: aiohttp.ClientSession,
    signing_key: SigningKey,
    redis_url: str,
    namespace: str,
) -> None:
    import redis.asyncio as aioredis

    from streamia_kit.auth import RedisRevocationStore

    # The gateway builds its own Redis revocation store, in the namespace it was given.
    gw = await start_gateway(redis_url=redis_url, namespace=namespace)
    token = signing_key.issue(f"u-{time.time_ns()}", "d@example.com", "user", 3600)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (await _get(http, gw.url + "/api/favorites", bearer(token)))[0] == 200

    client = aioredis.from_url(redis_url)
    try:
        # What the users service does on logout, from another process's point of view.
        writer = RedisRevocationStore(client, namespace=namespace)  # as Infrastructure builds it
        await writer.revoke_token(claims["jti"], claims["exp"])
        revoked_at = time.monotonic()
    finally:
        await client.aclose()

    # The gateway checks its in-memory mirror, which the revocation reaches by pub/sub.
    async def refused() -> bool:
        status, body = await _get(http, gw.url + "/api/favorites", bearer(token))
        return (status, body.get("message")) == (401, INVALID_TOKEN)

    await wait_for(refused, 2.0, 0.01, "the revocation refused at the gateway")
    assert time.monotonic() - revoked_at < 1.0
    async with http.get(gw.url + "/metrics") as resp:
        metrics = await resp.text()
    age = re.search(r"^streamia_gateway_revocations_sync_age_seconds (\S+)$", metrics, re.M)
    assert age is not None and float(age.group(1)) < 3.0, metrics[-2000:]
