"""The declarative base of the notification service's own database (plus outbox/inbox)."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from streamia_kit.db import NAMING
from streamia_kit.messaging import messaging_tables


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


messaging_tables(Base.metadata)
