"""Tables of the ratings service's own database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, Index, Integer, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from streamia_catalogue_projection import projection_tables
from streamia_kit.db import NAMING, UTCDateTime, new_id, utcnow
from streamia_kit.messaging import messaging_tables

STARS = (1, 2, 3, 4, 5)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Rating(Base):
    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("user_id", "movie_id"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="stars"),
        Index("ix_ratings_user_created", "user_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(64))
    movie_id: Mapped[str] = mapped_column(String(64), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MovieSummary(Base):
    """How many ratings of each star a movie has; kept in step in every rating's transaction.

    Counters (rather than an aggregate query) make the row lock the thing that orders
    concurrent writes on one movie, so every event carries the summary as of its commit.
    """

    __tablename__ = "movie_summaries"

    movie_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stars_1: Mapped[int] = mapped_column(Integer, default=0)
    stars_2: Mapped[int] = mapped_column(Integer, default=0)
    stars_3: Mapped[int] = mapped_column(Integer, default=0)
    stars_4: Mapped[int] = mapped_column(Integer, default=0)
    stars_5: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[float] = mapped_column(Float, default=0.0)


messaging_tables(Base.metadata)
movie_projection, tombstones = projection_tables(Base.metadata)
