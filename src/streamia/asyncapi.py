"""The AsyncAPI 3 document of the platform's events, generated from the code that defines them.

Exchanges, routing keys and payload schemas come from the event models in `streamia_kit.events`;
queues from the consumers the services subscribe in their `create_app`; the envelope from the
CloudEvents model; publishers from `PUBLISHERS`. `streamia asyncapi` writes `docs/asyncapi.yaml`,
and a test regenerates it and fails on any difference.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from streamia import platform
from streamia_kit.bus import Subscription
from streamia_kit.events import EVENT_TYPES, EXCHANGES, PUBLISHERS, Envelope, Event
from streamia_kit.rabbitmq_bus import ATTEMPT_HEADER

CONTENT_TYPE = "application/cloudevents+json"
_AMQP = "0.3.0"  # the AMQP bindings version the channel, operation and message bindings follow
_SCHEMAS = "#/components/schemas/"


def _key(name: str) -> str:
    """A component or channel key (letters, digits, `_` and `-` only) for a dotted name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _payload_schemas() -> dict[str, Any]:
    """JSON schemas of the envelope and every event payload, cross-referenced as components."""
    models: list[type[Envelope] | type[Event]] = [Envelope, *EVENT_TYPES.values()]
    _, definitions = models_json_schema(
        [(model, "serialization") for model in models], ref_template=_SCHEMAS + "{model}"
    )
    return dict(sorted(definitions["$defs"].items()))


def _message(event: type[Event]) -> dict[str, Any]:
    return {
        "name": event.type,
        "title": event.__name__,
        "summary": f"`{event.type}` on the `{event.exchange}` exchange.",
        "contentType": CONTENT_TYPE,
        "headers": {"$ref": _SCHEMAS + "AmqpHeaders"},
        "payload": {
            "allOf": [
                {"$ref": _SCHEMAS + "Envelope"},
                {
                    "type": "object",
                    "required": ["type", "data"],
                    "properties": {
                        "type": {"const": event.type},
                        "data": {"$ref": _SCHEMAS + event.__name__},
                    },
                },
            ]
        },
        "bindings": {"amqp": {"messageType": event.type, "bindingVersion": _AMQP}},
    }


def _routing_key_channel(event: type[Event]) -> dict[str, Any]:
    return {
        "address": event.type,
        "title": f"{event.type} on {event.exchange}",
        "description": (
            f"Routing key `{event.type}` on the durable topic exchange `{event.exchange}`, "
            f"published by {PUBLISHERS[event.exchange]} through its transactional outbox."
        ),
        "messages": {event.__name__: {"$ref": f"#/components/messages/{event.__name__}"}},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": event.exchange,
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": _AMQP,
            }
        },
    }


def _queue_channel(sub: Subscription, event: type[Event]) -> dict[str, Any]:
    return {
        "address": sub.queue,
        "title": f"{sub.consumer}'s queue for {sub.event_type}",
        "description": (
            f"Durable queue bound to `{sub.exchange}` with routing key `{sub.event_type}`. "
            f"A failed delivery waits in `{sub.queue}.retry.<n>` (a TTL per attempt) and comes "
            f"back; after the last attempt, or at once when malformed, it moves to "
            f"`{sub.queue}.dlq`."
        ),
        "messages": {event.__name__: {"$ref": f"#/components/messages/{event.__name__}"}},
        "bindings": {
            "amqp": {
                "is": "queue",
                "queue": {
                    "name": sub.queue,
                    "durable": True,
                    "exclusive": False,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": _AMQP,
            }
        },
    }


def _headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "AMQP message headers; the CloudEvents attributes travel in the body.",
        "properties": {
            ATTEMPT_HEADER: {
                "type": "integer",
                "minimum": 1,
                "description": "Delivery attempt, 1 when published; raised on each retry.",
            },
            "traceparent": {
                "type": "string",
                "description": "W3C trace context of the request that caused the event.",
            },
        },
    }


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document, as plain data in a stable order."""
    subscriptions = platform.subscriptions()
    consumers: defaultdict[str, list[Subscription]] = defaultdict(list)
    for sub in subscriptions:
        consumers[sub.event_type].append(sub)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event in sorted(EVENT_TYPES.values(), key=lambda cls: (cls.exchange, cls.type)):
        key = _key(event.type)
        channels[key] = _routing_key_channel(event)
        publisher = PUBLISHERS[event.exchange]
        operations[_key(f"{publisher}.sends.{event.type}")] = {
            "action": "send",
            "title": f"{publisher} publishes {event.type}",
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{event.__name__}"}],
            "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": _AMQP}},
        }
        for sub in consumers[event.type]:
            queue = _key(sub.queue)
            channels[queue] = _queue_channel(sub, event)
            operations[_key(f"{sub.consumer}.receives.{event.type}")] = {
                "action": "receive",
                "title": f"{sub.consumer} consumes {event.type}",
                "channel": {"$ref": f"#/channels/{queue}"},
                "messages": [{"$ref": f"#/channels/{queue}/messages/{event.__name__}"}],
                "bindings": {"amqp": {"ack": True, "bindingVersion": _AMQP}},
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Streamia events",
            "version": "1.0.0",
            "description": (
                "The events Streamia's services publish and consume over RabbitMQ: one durable "
                f"topic exchange per publisher ({', '.join(EXCHANGES)}), the event type as "
                "routing key, and a durable queue `<consumer>.<event type>` per consumer. "
                "Every message is a CloudEvents 1.0 envelope (structured mode) whose `data` is "
                "the event payload. Generated by `streamia asyncapi`; do not edit by hand."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "rabbitmq": {
                "host": "rabbitmq:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": (
                    "STREAMIA_AMQP_URL; with STREAMIA_NAMESPACE set, every name starts "
                    "`<namespace>.`"
                ),
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {
                event.__name__: _message(event)
                for event in sorted(EVENT_TYPES.values(), key=lambda cls: cls.__name__)
            },
            "schemas": {"AmqpHeaders": _headers_schema(), **_payload_schemas()},
        },
    }


def render() -> str:
    """The document as YAML text (what `docs/asyncapi.yaml` holds)."""
    return yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100)
