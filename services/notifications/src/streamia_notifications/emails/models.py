"""The durable record of sent emails: one row per event id is the exactly-once guard."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from streamia_kit.db import UTCDateTime, utcnow
from streamia_notifications.database import Base


class SentEmail(Base):
    __tablename__ = "sent_emails"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    # Masked: the farewell email outlives the account, its address should not.
    recipient: Mapped[str] = mapped_column(String(254))
    sender: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
