"""Email jobs kept in the service's own database (the runner used when Redis is not set)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from streamia_kit.db import UTCDateTime, utcnow
from streamia_notifications.database import Base


class QueuedEmail(Base):
    """A pending email; the row is deleted once it is sent or has failed for good."""

    __tablename__ = "email_jobs"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)  # EmailJob as JSON (holds a reset token)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Set while a runner works on the job; a runner that died lets it lapse.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
