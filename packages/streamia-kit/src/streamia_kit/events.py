"""Event payloads (past tense, pydantic) and the CloudEvents 1.0 envelope that carries them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

# One schema per event for all its consumers: every consumer keeps ids in 64-character
# columns (inbox, projections, tombstones) and addresses in 254, so a longer one could be
# applied by none of them. It is refused where the payload is read, the same way by each
# consumer: dead-lettered at once, never retried and never half-applied (one consumer sending
# an email for an account the others could not delete).
EntityId = Annotated[str, Field(min_length=1, max_length=64)]
EmailAddress = Annotated[str, Field(max_length=254)]


class Event(BaseModel):
    """Base of every event payload; `type` is the routing key, `exchange` where it goes."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: ClassVar[str]
    exchange: ClassVar[str]


class Envelope(BaseModel):
    """CloudEvents 1.0 attributes plus W3C `traceparent`."""

    model_config = ConfigDict(extra="ignore")

    # The inbox keeps ids in a 64-character column: a longer one can never be processed.
    id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=64)
    source: str
    type: str
    specversion: str = "1.0"
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = "application/json"
    traceparent: str | None = None
    data: dict[str, Any]

    @classmethod
    def wrap(cls, event: Event, source: str, traceparent: str | None = None) -> Envelope:
        return cls(
            source=source,
            type=event.type,
            traceparent=traceparent,
            data=event.model_dump(mode="json"),
        )


# -- users -------------------------------------------------------------------------------


class UserRegistered(Event):
    type = "user.registered"
    exchange = "user.events"
    user_id: EntityId
    email: EmailAddress
    first_name: str
    last_name: str
    # The account's language ("es"/"en") for its emails; None from before it was stored.
    language: str | None = None


class UserUpdated(Event):
    type = "user.updated"
    exchange = "user.events"
    user_id: EntityId
    email: EmailAddress
    first_name: str
    last_name: str
    # The account's language ("es"/"en") for its emails; None from before it was stored.
    language: str | None = None


class UserDeleted(Event):
    type = "user.deleted"
    exchange = "user.events"
    user_id: EntityId
    email: EmailAddress
    first_name: str
    last_name: str
    # The account's language ("es"/"en") for its emails; None from before it was stored.
    language: str | None = None


class PasswordResetRequested(Event):
    """Carries the raw reset token: only the notification service reads it, never logs it."""

    type = "password.reset.requested"
    exchange = "user.events"
    user_id: EntityId
    email: EmailAddress
    first_name: str
    token: str
    expires_at: datetime
    language: str | None = None


# -- movies ------------------------------------------------------------------------------


class MovieSnapshot(Event):
    """What other services project about a movie."""

    movie_id: EntityId
    title: str
    cover_image: str | None = None
    video_url: str | None = None
    duration: float | None = None
    has_audio: bool | None = None
    category: str | None = None
    version: float = 0.0  # updatedAt as epoch seconds; projections keep the newest


class MovieCreated(MovieSnapshot):
    type = "movie.created"
    exchange = "movie.events"


class MovieUpdated(MovieSnapshot):
    type = "movie.updated"
    exchange = "movie.events"


class MediaRef(BaseModel):
    provider: str
    key: str
    kind: str = "video"  # video | subtitle | poster


class MovieDeleted(Event):
    type = "movie.deleted"
    exchange = "movie.events"
    movie_id: EntityId
    title: str = ""
    media: list[MediaRef] = []


# -- ratings, favorites, comments ---------------------------------------------------------


class RatingSummary(BaseModel):
    average: float
    count: int


class RatingEvent(Event):
    rating_id: EntityId
    movie_id: EntityId
    user_id: EntityId
    rating: int | None = None
    summary: RatingSummary
    version: float  # epoch seconds when the summary was computed; newest wins


class RatingCreated(RatingEvent):
    type = "rating.created"
    exchange = "rating.events"


class RatingUpdated(RatingEvent):
    type = "rating.updated"
    exchange = "rating.events"


class RatingDeleted(RatingEvent):
    type = "rating.deleted"
    exchange = "rating.events"


class FavoriteAdded(Event):
    type = "favorite.added"
    exchange = "favorite.events"
    favorite_id: EntityId
    user_id: EntityId
    movie_id: EntityId


class FavoriteRemoved(Event):
    type = "favorite.removed"
    exchange = "favorite.events"
    favorite_id: EntityId
    user_id: EntityId
    movie_id: EntityId


class CommentCreated(Event):
    type = "comment.created"
    exchange = "comment.events"
    comment_id: EntityId
    user_id: EntityId
    movie_id: EntityId


class CommentDeleted(Event):
    type = "comment.deleted"
    exchange = "comment.events"
    comment_id: EntityId
    user_id: EntityId
    movie_id: EntityId


class CommentHidden(Event):
    """A comment left public view: reports reached the threshold, or an admin hid it. The
    author is told (by email), so nothing disappears without a word."""

    type = "comment.hidden"
    exchange = "comment.events"
    comment_id: EntityId
    user_id: EntityId
    movie_id: EntityId
    movie_title: str = ""
    text: str = ""
    reason: str  # "reports" | "admin"


# -- playback ----------------------------------------------------------------------------


class PlaybackStarted(Event):
    """The first progress of a (user, movie) in the user's history. `plays` is the movie's
    distinct viewers so far: it only grows, so the highest value seen is the newest."""

    type = "playback.started"
    exchange = "playback.events"
    user_id: EntityId
    movie_id: EntityId
    plays: int


class PlaybackFinished(Event):
    """A (user, movie) reached the end (>= 90 % or the last 2 minutes); again on a rewatch."""

    type = "playback.finished"
    exchange = "playback.events"
    user_id: EntityId
    movie_id: EntityId


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        UserRegistered,
        UserUpdated,
        UserDeleted,
        PasswordResetRequested,
        MovieCreated,
        MovieUpdated,
        MovieDeleted,
        RatingCreated,
        RatingUpdated,
        RatingDeleted,
        FavoriteAdded,
        FavoriteRemoved,
        CommentCreated,
        CommentDeleted,
        CommentHidden,
        PlaybackStarted,
        PlaybackFinished,
    )
}

EXCHANGES: tuple[str, ...] = tuple(sorted({cls.exchange for cls in EVENT_TYPES.values()}))

# The one service that publishes to each exchange (ARCHITECTURE.md §1); the AsyncAPI document
# and the message pacts name it, and the pacts check it against what that service sends.
PUBLISHERS: dict[str, str] = {
    "user.events": "users",
    "movie.events": "movies",
    "rating.events": "ratings",
    "favorite.events": "favorites",
    "comment.events": "comments",
    "playback.events": "playback",
}


def exchange_for(event_type: str) -> str:
    try:
        return EVENT_TYPES[event_type].exchange
    except KeyError:
        raise ValueError(f"unknown event type {event_type!r}") from None


def queue_name(consumer: str, event_type: str) -> str:
    """ARCHITECTURE.md §4: durable queues are named `<consumer>.<event type>`."""
    return f"{consumer}.{event_type}"
