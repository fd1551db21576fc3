"""What an email job carries: enough to render the email, keyed by the event that caused it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from streamia_kit.events import (
    CommentHidden,
    Envelope,
    PasswordResetRequested,
    UserDeleted,
    UserRegistered,
)
from streamia_kit.telemetry import current_traceparent
from streamia_notifications.config import Language
from streamia_notifications.recipients.models import Recipient

Kind = Literal["welcome", "password-reset", "farewell", "comment-hidden"]


def _language(value: str | None) -> Language | None:
    for language in get_args(Language):
        if value == language:
            return language
    return None


def mask_email(address: str) -> str:
    """`j***@example.com`: enough to tell addresses apart in a log, not to read them."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


class EmailJob(BaseModel):
    """One email to send exactly once; `event_id` is its identity everywhere."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    kind: Kind
    to: str
    first_name: str
    last_name: str = ""
    # The raw reset token: kept out of repr() so no log line (ours or the job library's) shows it.
    token: str | None = Field(default=None, repr=False)
    expires_at: datetime | None = None
    # The account's language; None (an unknown one, or an event from before it travelled)
    # sends the email in the default language.
    language: Language | None = None
    # comment-hidden: which comment, on which movie, and why ("reports" | "admin").
    movie_title: str = ""
    comment_text: str = ""
    reason: str = ""
    # The span that queued the job (the event's consumer): the send continues its trace.
    traceparent: str | None = Field(default_factory=current_traceparent)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "event_id", self.event_id
        yield "kind", self.kind
        yield "to", mask_email(self.to)

    @property
    def masked_to(self) -> str:
        return mask_email(self.to)

    def redact(self, text: str) -> str:
        """Remove the token and the full address from text bound for a log or the database."""
        if self.token:
            text = text.replace(self.token, "[token]")
        return text.replace(self.to, self.masked_to)

    @classmethod
    def welcome(cls, event: UserRegistered, envelope: Envelope) -> EmailJob:
        return cls(
            event_id=envelope.id,
            kind="welcome",
            to=event.email,
            first_name=event.first_name,
            last_name=event.last_name,
            language=_language(event.language),
        )

    @classmethod
    def password_reset(cls, event: PasswordResetRequested, envelope: Envelope) -> EmailJob:
        return cls(
            event_id=envelope.id,
            kind="password-reset",
            to=event.email,
            first_name=event.first_name,
            token=event.token,
            expires_at=event.expires_at,
            language=_language(event.language),
        )

    @classmethod
    def farewell(cls, event: UserDeleted, envelope: Envelope) -> EmailJob:
        return cls(
            event_id=envelope.id,
            kind="farewell",
            to=event.email,
            first_name=event.first_name,
            last_name=event.last_name,
            language=_language(event.language),
        )

    @classmethod
    def comment_hidden(
        cls, event: CommentHidden, envelope: Envelope, recipient: Recipient
    ) -> EmailJob:
        return cls(
            event_id=envelope.id,
            kind="comment-hidden",
            to=recipient.email,
            first_name=recipient.first_name,
            last_name=recipient.last_name,
            language=_language(recipient.language),
            movie_title=event.movie_title,
            comment_text=event.text,
            reason=event.reason,
        )
