"""Whom to write to about a user: the address and name user.* events brought."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from streamia_notifications.database import Base


class Recipient(Base):
    """Kept for emails about a user that their own event does not address (comment.hidden).
    A deleted account keeps a tombstone (no address, no names): user.* events race on their
    own queues, and a late user.registered must not bring the address back."""

    __tablename__ = "recipients"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    first_name: Mapped[str] = mapped_column(Text)
    last_name: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    version: Mapped[float] = mapped_column(Float)  # the newest event's time wins
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
