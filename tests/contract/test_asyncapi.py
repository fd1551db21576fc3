"""docs/asyncapi.yaml is what the event code generates, valid AsyncAPI 3, and true to the bus."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml

from streamia import platform
from streamia.asyncapi import render
from streamia_kit.events import EVENT_TYPES, Envelope, PasswordResetRequested, RatingUpdated

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "asyncapi.yaml"
# `python3 run.py test` installs the schemas from npm (contracts/package-lock.json).
SCHEMA = ROOT / "contracts" / "node_modules" / "@asyncapi" / "specs" / "schemas" / "3.0.0.json"


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


def test_the_committed_document_is_what_the_code_generates_now() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == render(), (
        "docs/asyncapi.yaml is stale: run `streamia asyncapi` and commit the result"
    )


def test_the_document_is_valid_against_the_asyncapi_3_schema(document: dict) -> None:
    if not SCHEMA.exists():
        reason = "the AsyncAPI schemas need Node/npm (`python3 run.py test` runs `npm ci`)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI must run it")
        pytest.skip(reason)
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)
    ]
    assert errors == []


def test_every_queue_the_services_subscribe_is_a_channel_bound_to_its_routing_key(
    document: dict,
) -> None:
    channels = {c["address"]: c for c in document["channels"].values()}
    subscriptions = platform.subscriptions()
    assert subscriptions
    for sub in subscriptions:
        binding = channels[sub.queue]["bindings"]["amqp"]
        assert binding["is"] == "queue" and binding["queue"]["name"] == sub.queue
        assert (
            f"`{sub.exchange}` with routing key `{sub.event_type}`"
            in (channels[sub.queue]["description"])
        )
    for event_type, cls in EVENT_TYPES.items():
        exchange = channels[event_type]["bindings"]["amqp"]["exchange"]
        assert (exchange["name"], exchange["type"]) == (cls.exchange, "topic")


@pytest.mark.parametrize(
    "event",
    [
        RatingUpdated(
            rating_id="r1",
            movie_id="m1",
            user_id="u1",
            rating=4,
            summary={"average": 4.0, "count": 1},
            version=1.5,
        ),
        PasswordResetRequested(
            user_id="u1",
            email="ana@example.com",
            first_name="Ana",
            token="t0k3n",
            expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        ),
    ],
    ids=lambda event: event.type,
)
def test_a_published_envelope_matches_its_message_schema_and_no_other(
    document: dict, event: RatingUpdated | PasswordResetRequested
) -> None:
    wire = json.loads(
        Envelope.wrap(
            event, "streamia/test", "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
        ).model_dump_json()
    )
    messages = document["components"]["messages"]

    def accepts(name: str) -> bool:
        schema = {"components": document["components"], **messages[name]["payload"]}
        return jsonschema.Draft202012Validator(schema).is_valid(wire)

    assert [name for name in messages if accepts(name)] == [type(event).__name__]
