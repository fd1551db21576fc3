"""Users publishes its events through the outbox, carrying what consumers need."""

from __future__ import annotations

from streamia_kit.testing import serve_app, wait_for
from streamia_users.app import create_app
from streamia_users.config import UsersSettings

PASSWORD = "Str0ng!Passw0rd"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_account_lifecycle_events_carry_what_consumers_need(stack, new_user, auth):
    app = create_app(UsersSettings(**stack.overrides()))
    seen: dict[str, list] = {}

    async def probe(envelope):
        seen.setdefault(envelope.type, []).append(envelope)

    bus = app.state.service.infra.bus
    for event_type in (
        "user.registered",
        "user.updated",
        "user.deleted",
        "password.reset.requested",
    ):
        bus.subscribe("probe", event_type, probe)

    async with serve_app(app) as client:
        body, data = await new_user(client)
        headers = auth(data["token"])
        user_id = data["user"]["id"]
        await client.put(
            "/api/users/me", headers=headers, json={"lastName": "Nueva", "language": "en"}
        )
        await client.post("/api/users/forgot-password", json={"email": body["email"]})
        await client.post("/api/users/forgot-password", json={"email": "nobody@example.com"})
        resp = await client.request(
            "DELETE",
            "/api/users/me",
            json={"password": PASSWORD},
            headers={**headers, "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
        )
        assert resp.status_code == 204
        await wait_for(lambda: len(seen.get("user.deleted", [])) == 1, message="user.deleted")
        await wait_for(lambda: "password.reset.requested" in seen, message="reset event")

    registered = seen["user.registered"][0]
    assert registered.data == {
        "user_id": user_id,
        "email": body["email"],
        "first_name": "Ana",
        "last_name": "García",
        "language": "es",
    }
    assert registered.source == "streamia/users" and registered.specversion == "1.0"
    assert seen["user.updated"][0].data["last_name"] == "Nueva"
    assert seen["user.updated"][0].data["language"] == "en"
    [reset] = seen["password.reset.requested"]  # none for the unknown address
    assert reset.data["user_id"] == user_id and len(reset.data["token"]) >= 43
    assert reset.data["language"] == "en"  # emails go out in the account's language
    deleted = seen["user.deleted"][0]
    assert deleted.data["email"] == body["email"] and deleted.data["first_name"] == "Ana"
    # The event continues the trace of the request that caused it.
    assert deleted.traceparent and deleted.traceparent.split("-")[1] == TRACE_ID


async def test_forgot_password_answers_the_same_for_unknown_addresses(client, new_user):
    body, _ = await new_user(client)
    known = await client.post("/api/users/forgot-password", json={"email": body["email"]})
    unknown = await client.post(
        "/api/users/forgot-password", json={"email": "nobody-here@example.com"}
    )
    assert known.status_code == unknown.status_code == 200
    assert known.json() == unknown.json()
