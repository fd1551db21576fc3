"""Issue 2 acceptance through the gateway: the account lifecycle, revocation, the login rate
limit and bad input — each refused with a 4xx in API.md's error shape, never a 500."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streamia_kit.auth import SigningKey

pytestmark = pytest.mark.e2e

NO_TOKEN = "No token provided"
BAD_TOKEN = "Invalid or expired token"
USER_FIELDS = {
    "id",
    "_id",
    "firstName",
    "lastName",
    "age",
    "email",
    "role",
    "createdAt",
    "updatedAt",
}


def assert_error(resp: httpx.Response, status: int, message: str | None = None) -> dict:
    """A JSON error in API.md's shape: `error` and `message` (equal) and a snake_case `code`."""
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert body.get("message") == body["error"], body
    code = body.get("code")
    assert isinstance(code, str) and code and code == code.lower() and " " not in code, body
    if message is not None:
        assert body["error"] == message, body
    return body


def assert_validation_error(resp: httpx.Response, *fields: str) -> dict:
    body = assert_error(resp, 400, "Validation error")
    details = body.get("details")
    assert isinstance(details, dict), body
    assert isinstance(details.get("formErrors"), list), body
    assert isinstance(details.get("fieldErrors"), dict), body
    for name in fields:
        assert details["fieldErrors"].get(name), (name, body)
    return body


def assert_user(user: dict, email: str) -> None:
    assert USER_FIELDS <= set(user), user
    assert user["id"] == user["_id"]
    assert user["email"] == email
    assert user["role"] == "user"
    forbidden = {
        k for k in user if "password" in k.lower() or "hash" in k.lower() or "reset" in k.lower()
    }
    assert not forbidden, user


async def test_gateway_health_is_200(api: httpx.AsyncClient) -> None:
    resp = await api.get("/health")
    assert resp.status_code == 200


async def test_registering_logging_in_and_editing_the_profile(platform, api, harness) -> None:
    body = harness.new_user(firstName="Ana", lastName="García", age=31)
    resp = await api.post("/api/users/register", json=body)
    assert resp.status_code == 201, resp.text
    registered = resp.json()
    assert {"message", "user", "token"} <= set(registered)
    assert_user(registered["user"], body["email"])

    assert_error(await api.post("/api/users/register", json=body), 409)

    resp = await api.post(
        "/api/users/login", json={"email": body["email"], "password": body["password"]}
    )
    assert resp.status_code == 200, resp.text
    login = resp.json()
    assert login["message"] == "Login successful"
    assert_user(login["user"], body["email"])
    token = login["token"]
    auth = harness.bearer(token)

    resp = await api.get("/api/users/me", headers=auth)
    assert resp.status_code == 200, resp.text
    assert_user(resp.json()["user"], body["email"])
    assert resp.json()["user"]["firstName"] == "Ana"

    new_email = f"e2e-{uuid.uuid4().hex[:12]}@example.com"
    resp = await api.put(
        "/api/users/me", headers=auth, json={"firstName": "Anabel", "age": 32, "email": new_email}
    )
    assert resp.status_code == 200, resp.text
    updated = resp.json()
    assert "message" in updated
    assert updated["user"]["firstName"] == "Anabel"
    assert updated["user"]["age"] == 32
    assert_user(updated["user"], new_email)
    resp = await api.get("/api/users/me", headers=auth)
    assert resp.json()["user"]["email"] == new_email

    other = await platform.register(api)
    assert_error(await api.put("/api/users/me", headers=auth, json={"email": other.email}), 409)
    assert_validation_error(await api.put("/api/users/me", headers=auth, json={"age": 12}), "age")
    assert_validation_error(
        await api.put("/api/users/me", headers=auth, json={"firstName": ""}), "firstName"
    )


async def test_login_errors(platform, api) -> None:
    account = await platform.register(api)
    assert_error(
        await api.post(
            "/api/users/login", json={"email": account.email, "password": "Wr0ng!Password"}
        ),
        401,
        "Email or password incorrect",
    )
    assert_error(
        await api.post(
            "/api/users/login",
            json={"email": f"nobody-{uuid.uuid4().hex}@example.com", "password": "Wr0ng!Password"},
        ),
        401,
        "Email or password incorrect",
    )
    assert_validation_error(
        await api.post("/api/users/login", json={"email": account.email}), "password"
    )


async def test_registration_validation_errors(api, harness) -> None:
    cases = {
        "firstName": harness.new_user(firstName=""),
        "lastName": harness.new_user(lastName="x" * 51),
        "age": harness.new_user(age=12),
        "email": harness.new_user(email="not-an-email"),
        "password": harness.new_user(password="alllowercase1!", confirmPassword="alllowercase1!"),
        "confirmPassword": harness.new_user(confirmPassword="Other!Passw0rd"),
    }
    for field, body in cases.items():
        resp = await api.post("/api/users/register", json=body)
        assert resp.status_code == 400, (field, resp.text)
        body_out = assert_validation_error(resp)
        errors = body_out["details"]
        assert errors["fieldErrors"].get(field) or errors["formErrors"], (field, body_out)
    # A fraction is not an age, whatever its spelling (whole numbers as "30" or 30.0 are coerced,
    # as the monolith's zod did: API.md "Conventions").
    for age in (30.5, "30.5", True):
        assert_validation_error(
            await api.post("/api/users/register", json=harness.new_user(age=age)), "age"
        )


async def test_no_token_and_bad_tokens_are_refused(platform, api, harness) -> None:
    account = await platform.register(api)
    assert_error(await api.get("/api/users/me"), 401, NO_TOKEN)
    assert_error(
        await api.get("/api/users/me", headers={"Authorization": "Token abc"}), 401, NO_TOKEN
    )
    assert_error(await api.get("/api/users/me", headers={"Authorization": "Bearer"}), 401)
    assert_error(
        await api.get("/api/users/me", headers=harness.bearer("not.a.jwt")), 401, BAD_TOKEN
    )

    # Same claims, signed by a key the platform never published.
    forged = SigningKey(Ed25519PrivateKey.generate()).issue(
        account.id, account.email, "admin", 3600
    )
    assert_error(await api.get("/api/users/me", headers=harness.bearer(forged)), 401, BAD_TOKEN)

    # A genuine token with its payload edited (role: admin): the signature no longer holds.
    head, payload, sig = account.token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    edited = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    assert_error(
        await api.get("/api/users/me", headers=harness.bearer(f"{head}.{edited}.{sig}")),
        401,
        BAD_TOKEN,
    )

    # "alg": "none".
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    assert_error(
        await api.get("/api/users/me", headers=harness.bearer(f"{none_head}.{payload}.")),
        401,
        BAD_TOKEN,
    )

    # Signed with the platform's real key, but expired an hour ago.
    key = SigningKey.from_pem((platform.data_dir / "users-jwt-ed25519.pem").read_bytes())
    expired = key.issue(account.id, account.email, "user", 60, now=time.time() - 3600)
    assert_error(await api.get("/api/users/me", headers=harness.bearer(expired)), 401, BAD_TOKEN)
    # ... while the same key with a fresh lifetime is accepted (the expiry is what failed).
    fresh = key.issue(account.id, account.email, "user", 60)
    assert (await api.get("/api/users/me", headers=harness.bearer(fresh))).status_code == 200


async def refused_within(api: httpx.AsyncClient, token: str, seconds: float = 1.0) -> None:
    """The token gets 401 `Invalid or expired token` no later than `seconds` from now."""
    deadline = time.monotonic() + seconds
    while True:
        resp = await api.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
        if resp.status_code == 401:
            assert_error(resp, 401, BAD_TOKEN)
            return
        assert resp.status_code == 200, resp.text
        if time.monotonic() > deadline:
            raise AssertionError(f"token still accepted {seconds}s after it was revoked")
        await asyncio.sleep(0.05)


async def test_logout_revokes_the_token(platform, api, harness) -> None:
    account = await platform.register(api)
    other_session = await platform.login(api, account.email, account.password)
    assert (await api.get("/api/users/me", headers=account.auth)).status_code == 200

    resp = await api.post("/api/users/logout", headers=account.auth)
    assert resp.status_code == 200, resp.text
    assert "message" in resp.json()
    await refused_within(api, account.token)
    assert_error(await api.post("/api/users/logout", headers=account.auth), 401, BAD_TOKEN)
    resp = await api.post("/api/users/logout")  # nothing to revoke: 200, as the monolith
    assert resp.status_code == 200, resp.text
    # Logging out ends that session only.
    resp = await api.get("/api/users/me", headers=harness.bearer(other_session))
    assert resp.status_code == 200


async def test_changing_the_password_revokes_other_sessions(platform, api, harness) -> None:
    account = await platform.register(api)
    auth = account.auth
    other_session = await platform.login(api, account.email, account.password)
    new_password = "N3w!Passw0rd"

    assert_error(
        await api.put(
            "/api/users/change-password",
            json={
                "currentPassword": account.password,
                "newPassword": new_password,
                "confirmPassword": new_password,
            },
        ),
        401,
        NO_TOKEN,
    )
    assert_error(
        await api.put(
            "/api/users/change-password",
            headers=auth,
            json={
                "currentPassword": "Wr0ng!Password",
                "newPassword": new_password,
                "confirmPassword": new_password,
            },
        ),
        400,  # the monolith's status: its clients log the user out on a 401
        "Current password is incorrect",
    )
    assert_validation_error(
        await api.put(
            "/api/users/change-password",
            headers=auth,
            json={
                "currentPassword": account.password,
                "newPassword": "weakpassword",
                "confirmPassword": "weakpassword",
            },
        ),
        "newPassword",
    )
    resp = await api.put(
        "/api/users/change-password",
        headers=auth,
        json={
            "currentPassword": account.password,
            "newPassword": new_password,
            "confirmPassword": "N3w!Passw0rdX",
        },
    )
    assert resp.status_code == 400, resp.text
    assert_validation_error(resp)
    assert_validation_error(
        await api.put(
            "/api/users/change-password",
            headers=auth,
            json={"newPassword": new_password, "confirmPassword": new_password},
        ),
        "currentPassword",
    )

    # confirmPassword may be left out, as the monolith's clients do.
    resp = await api.put(
        "/api/users/change-password",
        headers=auth,
        json={"currentPassword": account.password, "newPassword": new_password},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert {"message", "token"} <= set(body)

    await refused_within(api, other_session)
    await refused_within(api, account.token)
    resp = await api.get("/api/users/me", headers=harness.bearer(body["token"]))
    assert resp.status_code == 200
    assert_error(
        await api.post(
            "/api/users/login", json={"email": account.email, "password": account.password}
        ),
        401,
        "Email or password incorrect",
    )
    assert await platform.login(api, account.email, new_password)


async def test_deleting_the_account(platform, api, harness) -> None:
    account = await platform.register(api)
    other_session = await platform.login(api, account.email, account.password)

    assert_error(
        await api.request("DELETE", "/api/users/me", json={"password": account.password}),
        401,
        NO_TOKEN,
    )
    assert_validation_error(
        await api.request("DELETE", "/api/users/me", headers=account.auth, json={}), "password"
    )
    assert_error(
        await api.request(
            "DELETE", "/api/users/me", headers=account.auth, json={"password": "Wr0ng!Password"}
        ),
        400,  # a wrong credential inside a session is 400 (API.md): clients log out on 401
        "Password is incorrect",
    )
    assert (await api.get("/api/users/me", headers=account.auth)).status_code == 200

    resp = await api.request(
        "DELETE", "/api/users/me", headers=account.auth, json={"password": account.password}
    )
    assert resp.status_code == 204, resp.text
    assert resp.content == b""

    await refused_within(api, account.token)
    await refused_within(api, other_session)
    assert_error(
        await api.post(
            "/api/users/login", json={"email": account.email, "password": account.password}
        ),
        401,
        "Email or password incorrect",
    )
    assert await platform.count("users", "SELECT count(*) FROM users WHERE id = ?", account.id) == 0
    # The address is free again.
    again = await platform.register(api, email=account.email)
    assert again.id != account.id


async def test_the_sixth_failed_login_in_ten_minutes_gets_429(platform, api) -> None:
    account = await platform.register(api)
    wrong = {"email": account.email, "password": "Wr0ng!Password"}
    for attempt in range(1, 6):
        resp = await api.post("/api/users/login", json=wrong)
        assert resp.status_code == 401, (attempt, resp.status_code, resp.text)
    resp = await api.post("/api/users/login", json=wrong)
    body = assert_error(resp, 429)
    assert body["code"]
    retry_after = resp.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) > 0, resp.headers
    assert int(retry_after) <= 600
    assert "RateLimit-Limit" in resp.headers and "RateLimit-Reset" in resp.headers, resp.headers
    # Even the right password waits out the window.
    resp = await api.post(
        "/api/users/login", json={"email": account.email, "password": account.password}
    )
    assert resp.status_code == 429, resp.text


async def test_malformed_requests_get_4xx_json(platform, api) -> None:
    account = await platform.register(api)
    json_headers = {"Content-Type": "application/json"}

    # Missing fields.
    assert_validation_error(await api.post("/api/users/register", json={}), "email")
    # Wrong types.
    assert_validation_error(
        await api.post("/api/users/login", json={"email": 42, "password": ["x"]})
    )
    assert_validation_error(
        await api.put("/api/users/me", headers=account.auth, json={"age": "thirty"}), "age"
    )
    # A JSON body that is not an object.
    resp = await api.post("/api/users/login", content=b"[1, 2, 3]", headers=json_headers)
    assert 400 <= resp.status_code < 500, resp.text
    assert_error(resp, resp.status_code)
    # Malformed JSON.
    for raw in (b'{"email": "a@b.c", "password": ', b"{'single': 'quotes'}", b"\xff\xfe\x00"):
        resp = await api.post("/api/users/login", content=raw, headers=json_headers)
        assert resp.status_code == 400, (raw, resp.status_code, resp.text)
        assert_error(resp, 400)
        resp = await api.put("/api/users/me", content=raw, headers={**json_headers, **account.auth})
        assert resp.status_code == 400, (raw, resp.status_code, resp.text)
        assert_error(resp, 400)
    # A 1 MB body (login has its own tighter cap; register and /me the services' limit).
    big = orjson.dumps({"email": "a@example.com", "password": "x" * (1024 * 1024)})
    for method, path, headers in (
        ("POST", "/api/users/login", json_headers),
        ("POST", "/api/users/register", json_headers),
        ("PUT", "/api/users/me", {**json_headers, **account.auth}),
    ):
        resp = await api.request(method, path, content=big, headers=headers)
        assert resp.status_code == 413, (path, resp.status_code, resp.text[:300])
        assert_error(resp, 413)
    # Unknown route.
    assert_error(await api.get(f"/api/nothing-here/{uuid.uuid4().hex}"), 404, "Endpoint not found")
    # The account still works after all that.
    assert (await api.get("/api/users/me", headers=account.auth)).status_code == 200


async def test_a_refused_cors_origin_gets_403_json(api) -> None:
    evil = {"Origin": "http://evil.example"}
    resp = await api.get("/api/movies", headers=evil)
    assert_error(resp, 403)
    assert "access-control-allow-origin" not in {k.lower() for k in resp.headers}
    resp = await api.options(
        "/api/users/login",
        headers={
            **evil,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert_error(resp, 403)
    resp = await api.post(
        "/api/users/login",
        headers=evil,
        json={"email": "a@example.com", "password": "Wr0ng!Password"},
    )
    assert_error(resp, 403)
    # An allowed origin gets CORS headers.
    resp = await api.get("/api/movies", headers={"Origin": "http://localhost:5173"})
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("access-control-allow-origin") == "http://localhost:5173"


async def test_a_registration_retried_with_its_idempotency_key_is_done_once(
    platform, api, harness
) -> None:
    """Issue 12 point 5: a client that never saw its answer retries safely, in both modes."""
    body = harness.new_user()
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await api.post("/api/users/register", json=body, headers=key)
    assert first.status_code == 201, first.text
    again = await api.post("/api/users/register", json=body, headers=key)
    assert again.status_code == 201, again.text  # not 409 "email taken"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    sql = "SELECT count(*) FROM users WHERE email = ?"
    assert await platform.fetch("users", sql, body["email"]) == [(1,)]
    other = await api.post("/api/users/register", json={**body, "age": 31}, headers=key)
    assert assert_error(other, 422)["code"] == "idempotency_key_reused"
