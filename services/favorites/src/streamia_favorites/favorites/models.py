"""Tables of the favorites service's own database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from streamia_catalogue_projection import projection_tables
from streamia_kit.db import NAMING, UTCDateTime, new_id, utcnow
from streamia_kit.messaging import messaging_tables


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Favorite(Base):
    __tablename__ = "favorites"
    __table_args__ = (
        UniqueConstraint("user_id", "movie_id"),
        Index("ix_favorites_user_created", "user_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(64))
    movie_id: Mapped[str] = mapped_column(String(64), index=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


messaging_tables(Base.metadata)
movie_projection, tombstones = projection_tables(Base.metadata)
