"""API.md Users: register, login, profile, logout, change password, delete."""

from __future__ import annotations

import time

import jwt
import pytest

from streamia_kit.auth import SigningKey

PASSWORD = "Str0ng!Passw0rd"
NEW_PASSWORD = "N3w!Password"


def assert_error(resp, status: int, message: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == body["message"]
    assert isinstance(body["code"], str) and body["code"]
    if message is not None:
        assert body["message"] == message
    return body


async def test_registering_returns_the_user_and_a_token_with_the_monolith_claims(client, new_user):
    body, data = await new_user(client, email="Mixed.Case@Example.COM")
    user = data["user"]
    assert data["message"]
    assert user["id"] == user["_id"]
    assert user["email"] == "mixed.case@example.com"
    assert user["role"] == "user"
    assert set(user) == {
        "id",
        "_id",
        "firstName",
        "lastName",
        "age",
        "email",
        "role",
        "language",
        "createdAt",
        "updatedAt",
    }
    header = jwt.get_unverified_header(data["token"])
    claims = jwt.decode(data["token"], options={"verify_signature": False})
    assert header["kid"] and header["alg"] == "EdDSA"
    assert claims["sub"] == claims["id"] == user["id"]
    assert claims["email"] == user["email"] and claims["role"] == "user" and claims["jti"]
    assert 7190 <= claims["exp"] - claims["iat"] <= 7200


async def test_registering_a_taken_email_is_a_conflict(client, new_user):
    body, _ = await new_user(client)
    resp = await client.post("/api/users/register", json={**body, "email": body["email"].upper()})
    assert_error(resp, 409)


async def test_registration_validation_errors_use_the_monolith_shape(client):
    resp = await client.post(
        "/api/users/register",
        json={
            "firstName": "",
            "age": "31.5",
            "email": "not-an-email",
            "password": "weakpass",
            "confirmPassword": "other",
        },
    )
    body = assert_error(resp, 400, "Validation error")
    fields = body["details"]["fieldErrors"]
    assert set(fields) >= {"firstName", "lastName", "age", "email", "password"}
    assert body["details"]["formErrors"] == []


async def test_each_password_rule_is_enforced(client, new_user):

    for weak in ("Sh0rt!", "nouppercase1!", "NOLOWERCASE1!", "NoDigits!!", "NoSpecial123"):
        resp = await client.post(
            "/api/users/register",
            json={
                "firstName": "A",
                "lastName": "B",
                "age": 20,
                "email": "x@example.com",
                "password": weak,
                "confirmPassword": weak,
            },
        )
        body = assert_error(resp, 400)
        assert "password" in body["details"]["fieldErrors"], weak


async def test_mismatched_confirmation_is_reported_on_confirm_password(client):
    resp = await client.post(
        "/api/users/register",
        json={
            "firstName": "A",
            "lastName": "B",
            "age": 20,
            "email": "y@example.com",
            "password": PASSWORD,
            "confirmPassword": PASSWORD + "x",
        },
    )
    body = assert_error(resp, 400)
    assert body["details"]["fieldErrors"]["confirmPassword"] == ["Passwords do not match"]


async def test_age_must_be_a_whole_number_within_range(client):
    for age in ("31.5", 31.5, "thirty", 12, 151, None, True):
        resp = await client.post(
            "/api/users/register",
            json={
                "firstName": "A",
                "lastName": "B",
                "age": age,
                "email": "z@example.com",
                "password": PASSWORD,
                "confirmPassword": PASSWORD,
            },
        )
        body = assert_error(resp, 400)
        assert "age" in body["details"]["fieldErrors"], age


async def test_bad_bodies_get_400_json_never_500(client):
    cases = [
        dict(content=b"{not json", headers={"content-type": "application/json"}),
        dict(content=b"", headers={"content-type": "application/json"}),
        dict(content=b"[1, 2]", headers={"content-type": "application/json"}),
        dict(content=b'"string"', headers={"content-type": "application/json"}),
    ]
    for case in cases:
        resp = await client.post("/api/users/login", **case)
        assert_error(resp, 400)


async def test_a_one_megabyte_body_is_refused_with_413_json(client):
    resp = await client.post(
        "/api/users/register",
        content=b"a" * (1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert_error(resp, 413)


async def test_login_returns_a_token_and_rejects_wrong_credentials(client, new_user):
    body, _ = await new_user(client)
    ok = await client.post("/api/users/login", json={"email": body["email"], "password": PASSWORD})
    assert ok.status_code == 200
    assert ok.json()["message"] == "Login successful"
    assert ok.json()["user"]["email"] == body["email"]
    wrong = await client.post("/api/users/login", json={"email": body["email"], "password": "x"})
    assert_error(wrong, 401, "Email or password incorrect")
    unknown = await client.post(
        "/api/users/login", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    assert_error(unknown, 401, "Email or password incorrect")


async def test_me_needs_a_valid_token(client, new_user, auth):
    _, data = await new_user(client)
    assert (await client.get("/api/users/me", headers=auth(data["token"]))).json()["user"] == data[
        "user"
    ]
    assert_error(await client.get("/api/users/me"), 401, "No token provided")
    assert_error(
        await client.get("/api/users/me", headers={"Authorization": "Token abc"}),
        401,
        "No token provided",
    )
    assert_error(
        await client.get("/api/users/me", headers=auth("abc.def.ghi")),
        401,
        "Invalid or expired token",
    )


async def test_forged_and_expired_tokens_are_refused(client, new_user, auth, users_app):
    _, data = await new_user(client)
    forged = SigningKey.load_or_create(users_app.state.users.settings.data_dir / "forger.pem")
    claims = jwt.decode(data["token"], options={"verify_signature": False})
    forged_token = forged.issue(claims["id"], claims["email"], "admin", 3600)
    assert_error(
        await client.get("/api/users/me", headers=auth(forged_token)),
        401,
        "Invalid or expired token",
    )
    real = users_app.state.users.key
    expired = real.issue(claims["id"], claims["email"], "user", 60, now=time.time() - 3600)
    assert_error(
        await client.get("/api/users/me", headers=auth(expired)), 401, "Invalid or expired token"
    )
    tampered = data["token"][:-4] + ("AAAA" if not data["token"].endswith("AAAA") else "BBBB")
    assert_error(await client.get("/api/users/me", headers=auth(tampered)), 401)


async def test_updating_the_profile(client, new_user, auth):
    _, data = await new_user(client)
    _, other = await new_user(client)
    headers = auth(data["token"])
    resp = await client.put(
        "/api/users/me", headers=headers, json={"firstName": "  Lucía ", "age": 40}
    )
    assert resp.status_code == 200
    assert resp.json()["user"]["firstName"] == "Lucía"
    assert resp.json()["user"]["age"] == 40
    assert resp.json()["message"]
    taken = await client.put(
        "/api/users/me", headers=headers, json={"email": other["user"]["email"]}
    )
    assert_error(taken, 409)
    invalid = await client.put("/api/users/me", headers=headers, json={"age": "forty"})
    assert_error(invalid, 400, "Validation error")


async def test_logout_revokes_only_that_token(client, new_user, auth):
    body, data = await new_user(client)
    second = (
        await client.post("/api/users/login", json={"email": body["email"], "password": PASSWORD})
    ).json()
    resp = await client.post("/api/users/logout", headers=auth(data["token"]))
    assert resp.status_code == 200 and resp.json()["message"]
    assert_error(
        await client.get("/api/users/me", headers=auth(data["token"])),
        401,
        "Invalid or expired token",
    )
    assert (await client.get("/api/users/me", headers=auth(second["token"]))).status_code == 200


async def test_changing_the_password_revokes_other_sessions_and_returns_a_new_token(
    client, new_user, auth
):
    body, data = await new_user(client)
    resp = await client.put(
        "/api/users/change-password",
        headers=auth(data["token"]),
        json={
            "currentPassword": PASSWORD,
            "newPassword": NEW_PASSWORD,
            "confirmPassword": NEW_PASSWORD,
        },
    )
    assert resp.status_code == 200, resp.text
    new_token = resp.json()["token"]
    assert_error(await client.get("/api/users/me", headers=auth(data["token"])), 401)
    assert (await client.get("/api/users/me", headers=auth(new_token))).status_code == 200
    old = await client.post("/api/users/login", json={"email": body["email"], "password": PASSWORD})
    assert old.status_code == 401
    new = await client.post(
        "/api/users/login", json={"email": body["email"], "password": NEW_PASSWORD}
    )
    assert new.status_code == 200


async def test_change_password_checks_the_current_password_and_the_rules(client, new_user, auth):
    _, data = await new_user(client)
    headers = auth(data["token"])
    wrong = await client.put(
        "/api/users/change-password",
        headers=headers,
        json={
            "currentPassword": "Wrong!Pass1",
            "newPassword": NEW_PASSWORD,
            "confirmPassword": NEW_PASSWORD,
        },
    )
    assert_error(wrong, 400, "Current password is incorrect")
    weak = await client.put(
        "/api/users/change-password",
        headers=headers,
        json={"currentPassword": PASSWORD, "newPassword": "weak", "confirmPassword": "weak"},
    )
    assert "newPassword" in assert_error(weak, 400)["details"]["fieldErrors"]
    assert (await client.get("/api/users/me", headers=headers)).status_code == 200


async def test_deleting_the_account_needs_the_password_and_revokes_tokens(client, new_user, auth):
    body, data = await new_user(client)
    headers = auth(data["token"])
    assert_error(
        await client.request(
            "DELETE", "/api/users/me", headers=headers, json={"password": "Wrong!Pass1"}
        ),
        400,
        "Password is incorrect",
    )
    assert_error(await client.request("DELETE", "/api/users/me", headers=headers, json={}), 400)
    resp = await client.request(
        "DELETE", "/api/users/me", headers=headers, json={"password": PASSWORD}
    )
    assert resp.status_code == 204
    assert_error(await client.get("/api/users/me", headers=headers), 401)
    login = await client.post(
        "/api/users/login", json={"email": body["email"], "password": PASSWORD}
    )
    assert login.status_code == 401
    again = await client.post("/api/users/register", json=body)
    assert again.status_code == 201


async def test_jwks_publishes_the_signing_key(client, new_user):
    _, data = await new_user(client)
    jwks = (await client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(data["token"])
    [key] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    public = jwt.PyJWK.from_dict(key).key
    claims = jwt.decode(data["token"], public, algorithms=["EdDSA"])
    assert claims["id"] == data["user"]["id"]
    assert "d" not in key  # never the private part


async def test_text_no_database_can_store_is_refused_with_400(client, new_user, auth):
    resp = await client.post(
        "/api/users/register",
        json={
            "firstName": "Ana\u0000",
            "lastName": "B",
            "age": 20,
            "email": "nul@example.com",
            "password": PASSWORD,
            "confirmPassword": PASSWORD,
        },
    )
    assert "firstName" in assert_error(resp, 400)["details"]["fieldErrors"]
    _, data = await new_user(client)
    resp = await client.put(
        "/api/users/me",
        headers=auth(data["token"]),
        content='{"lastName": "\\ud800"}',
    )
    assert_error(resp, 400)
    login = await client.post("/api/users/login", json={"email": "a\u0000@x.io", "password": "p"})
    assert_error(login, 400)


async def test_every_service_answer_says_nosniff(client):
    for resp in (await client.get("/health"), await client.get("/api/users/me")):
        assert resp.headers["X-Content-Type-Options"] == "nosniff", resp.status_code


async def test_an_email_with_a_non_ascii_local_part_is_refused_at_registration(client, new_user):
    for email in ("josé@example.com", "用户@example.com"):
        body = {"firstName": "A", "lastName": "B", "age": 20, "email": email}
        body |= {"password": PASSWORD, "confirmPassword": PASSWORD}
        resp = await client.post("/api/users/register", json=body)
        error = assert_error(resp, 400, "Validation error")
        assert "non-ASCII" in error["details"]["fieldErrors"]["email"][0], email
    _, data = await new_user(client, email="jose@bücher.example")  # a non-ASCII domain is fine
    assert data["user"]["email"] == "jose@bücher.example"


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("en-GB,en;q=0.9,es;q=0.8", "en"),
        ("es-ES,es;q=0.9", "es"),
        ("fr-FR,fr;q=0.9,en;q=0.5,es;q=0.7", "es"),
        ("fr, de;q=0.5", "es"),  # neither of ours: the default
        ("en;q=0, es;q=0.1", "es"),  # q=0 means "not this one"
        ("*", "es"),
        ("", "es"),
        ("en;q=nonsense, es;q=0.5", "es"),
    ],
)
async def test_the_language_at_sign_up_comes_from_accept_language(
    client, new_user, accept_language, expected
):
    _, data = await new_user(client, headers={"Accept-Language": accept_language})
    assert data["user"]["language"] == expected


async def test_a_language_in_the_body_wins_and_the_profile_changes_it(client, new_user, auth):
    _, data = await new_user(client, language="en")
    assert data["user"]["language"] == "en"
    headers = auth(data["token"])
    changed = await client.put("/api/users/me", headers=headers, json={"language": "es"})
    assert changed.status_code == 200
    assert changed.json()["user"]["language"] == "es"
    assert (await client.get("/api/users/me", headers=headers)).json()["user"]["language"] == "es"
    unknown = await client.put("/api/users/me", headers=headers, json={"language": "fr"})
    assert_error(unknown, 400, "Validation error")
    assert unknown.json()["details"]["fieldErrors"]["language"]
    refused = await client.post(
        "/api/users/register",
        json={**data["user"], "password": "Str0ng!Pass", "language": "klingon"},
    )
    assert_error(refused, 400, "Validation error")
