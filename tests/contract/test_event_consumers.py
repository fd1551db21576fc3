"""Consumer side of the message pacts: what each service needs from the events it consumes.

One pact per (consumer, publisher), one interaction per event type the consumer subscribes to,
derived from the subscriptions its `create_app` registers, so a new consumer gets a contract.
Each message is delivered to the consumer's real handler through its bus and must be processed;
the embedded stack is enough here, as what is under contract is the payload (the handlers' own
tests run on both stacks). The pact is written to `contracts/pacts/`: a change there is a
contract change and fails here until the new file is committed; the publishers' tests verify
the committed files against the events they really send.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pact import Pact, match

from streamia import platform
from streamia_kit.bus import Outcome
from streamia_kit.events import (
    EVENT_TYPES,
    PUBLISHERS,
    CommentHidden,
    Event,
    MediaRef,
    MovieCreated,
    MovieDeleted,
    MovieUpdated,
    PasswordResetRequested,
    PlaybackFinished,
    PlaybackStarted,
    RatingCreated,
    RatingDeleted,
    RatingSummary,
    RatingUpdated,
    UserDeleted,
    UserRegistered,
    UserUpdated,
    queue_name,
)
from streamia_kit.testing import Stack

PACTS = Path(__file__).resolve().parents[2] / "contracts" / "pacts"
CONTENT_TYPE = "application/cloudevents+json"
ISO_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"

_USER = {
    "user_id": "6f1c2a9e4b7d4e0f9a3b5c7d9e1f2a3b",
    "email": "ana@example.com",
    "first_name": "Ana",
}
_MOVIE = {
    "movie_id": "0b9e8d7c6b5a49384756a1b2c3d4e5f6",
    "title": "Nosferatu",
    "cover_image": "/media/posters/nosferatu.jpg",
    "video_url": "/media/videos/nosferatu.mp4",
    "duration": 5640.0,
    "category": "horror",
    "version": 1767225600.25,
}
_RATING = {
    "rating_id": "9a8b7c6d5e4f40312a3b4c5d6e7f8091",
    "movie_id": _MOVIE["movie_id"],
    "user_id": _USER["user_id"],
    "rating": 4,
    "summary": RatingSummary(average=4.5, count=2),
    "version": 1767225601.5,
}
# The example of each event in the pacts: plausible values the consumers accept.
EXAMPLES: dict[str, Event] = {
    e.type: e
    for e in (
        UserRegistered(**_USER, last_name="García"),
        UserUpdated(**_USER, last_name="García López"),
        UserDeleted(**_USER, last_name="García"),
        PasswordResetRequested(
            **_USER, token="Zm9vYmFyYmF6cXV4", expires_at=datetime(2030, 1, 1, tzinfo=UTC)
        ),
        MovieCreated(**_MOVIE),
        MovieUpdated(**_MOVIE),
        MovieDeleted(
            movie_id=_MOVIE["movie_id"],
            title="Nosferatu",
            media=[MediaRef(provider="local", key="subtitles/nosferatu.es.vtt", kind="subtitle")],
        ),
        RatingCreated(**_RATING),
        RatingUpdated(**_RATING),
        RatingDeleted(**{**_RATING, "rating": None}),
        CommentHidden(
            comment_id="5f4e3d2c1b0a49382716a5b4c3d2e1f0",
            user_id=_USER["user_id"],
            movie_id=_MOVIE["movie_id"],
            movie_title="Nosferatu",
            text="Spoilers: the count dies at dawn.",
            reason="reports",
        ),
        PlaybackStarted(user_id=_USER["user_id"], movie_id=_MOVIE["movie_id"], plays=3),
        PlaybackFinished(user_id=_USER["user_id"], movie_id=_MOVIE["movie_id"]),
    )
}
# Fields a consumer needs beyond the event's required ones: movies' media purge needs the list.
NEEDS: dict[tuple[str, str], dict[str, Any]] = {
    # The author's email names the movie and quotes the comment.
    ("notifications", "comment.hidden"): {
        "movie_title": match.str("Nosferatu"),
        "text": match.str("Spoilers: the count dies at dawn."),
    },
    ("movies", "movie.deleted"): {
        "media": match.each_like(
            {
                "provider": match.str("local"),
                "key": match.str("subtitles/a.vtt"),
                "kind": "subtitle",
            }
        )
    },
}


def _pairs() -> list[tuple[str, str, list[str]]]:
    """(consumer, publisher, event types) for every consumer of every publisher."""
    consumed: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    for sub in platform.subscriptions():
        consumed[(sub.consumer, PUBLISHERS[sub.exchange])].append(sub.event_type)
    return [(consumer, publisher, types) for (consumer, publisher), types in consumed.items()]


def expected_message(consumer: str, event: Event) -> dict[str, Any]:
    """The envelope the consumer needs: CloudEvents attributes and the payload fields it reads."""
    data = event.model_dump(mode="json")
    fields = {
        name: match.like(data[name])
        for name, field in type(event).model_fields.items()
        if field.is_required()
    }
    fields.update(NEEDS.get((consumer, event.type), {}))
    return {
        "id": match.str("3c1f0e9d8b7a46d5a4f3e2d1c0b9a897"),
        "source": match.str(f"streamia/{PUBLISHERS[event.exchange]}"),
        "type": event.type,
        "specversion": "1.0",
        "time": match.regex("2030-01-01T00:00:00.000001Z", regex=ISO_TIME),
        "data": fields,
    }


@pytest.mark.parametrize(
    ("consumer", "publisher", "event_types"),
    [pytest.param(*pair, id=f"{pair[0]}<-{pair[1]}") for pair in _pairs()],
)
async def test_the_consumer_processes_every_event_it_expects_from_the_publisher(
    consumer: str, publisher: str, event_types: list[str], tmp_path: Path
) -> None:
    pact = Pact(consumer, f"{publisher}-events").with_specification("V4")
    for event_type in event_types:
        event = EXAMPLES[event_type]
        (
            pact.upon_receiving(event_type, "Async")
            .with_body(expected_message(consumer, event), CONTENT_TYPE)
            .with_metadata({"exchange": event.exchange, "routingKey": event_type})
        )
    messages: list[tuple[bytes, dict[str, object]]] = []

    def collect(body: str | bytes | None, metadata: dict[str, object]) -> None:
        assert body is not None
        messages.append((body.encode() if isinstance(body, str) else body, metadata))

    pact.verify(collect, "Async")
    assert len(messages) == len(event_types)

    module = platform.load(consumer)
    assert module is not None
    app = module.app.create_app(module.settings_cls(**Stack("embedded", tmp_path).overrides()))
    service = app.state.service
    await service.start()
    try:
        for body, metadata in messages:
            event_type = str(metadata["routingKey"])
            assert metadata["exchange"] == EVENT_TYPES[event_type].exchange
            subscription = service.bus.subscriptions[queue_name(consumer, event_type)]
            verdict = await service.bus.dispatch(subscription, body, 1)
            assert verdict.outcome is Outcome.DONE, (event_type, verdict.error)
    finally:
        await service.stop()

    _write_and_compare(pact, f"{consumer}-{publisher}-events.json")


def _write_and_compare(pact: Pact, name: str) -> None:
    """Write the pact into the repo; fail when its contract differs from the committed one
    (its `metadata`, the Pact library versions, may change with the lock without failing)."""
    committed = PACTS / name
    before = json.loads(committed.read_text(encoding="utf-8")) if committed.exists() else {}
    pact.write_file(PACTS, overwrite=True)
    after = json.loads(committed.read_text(encoding="utf-8"))
    before.pop("metadata", None)
    after.pop("metadata", None)
    assert before == after, f"contracts/pacts/{name} changed: review the diff and commit it"
