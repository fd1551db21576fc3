"""Tables of the playback service's own database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Index, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from streamia_catalogue_projection import projection_tables
from streamia_kit.db import NAMING, UTCDateTime
from streamia_kit.messaging import messaging_tables


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Progress(Base):
    """Where one user is in one movie; `client_at` orders writes (last write wins)."""

    __tablename__ = "progress"
    __table_args__ = (
        Index("ix_progress_user_updated", "user_id", "updated_at"),
        Index("ix_progress_user_finished_updated", "user_id", "finished", "updated_at"),
    )

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    movie_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    position: Mapped[float] = mapped_column(Float)
    duration: Mapped[float] = mapped_column(Float)
    finished: Mapped[bool] = mapped_column(Boolean)
    client_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Viewer(Base):
    """Who ever started a movie, kept when a history entry is forgotten (plays and /popular
    count distinct viewers), removed with the account or the movie."""

    __tablename__ = "viewers"

    movie_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class MovieStats(Base):
    """Per movie: distinct viewers (only grows) and the trending score.

    `trend` is log(sum of w * 2^((t - EPOCH) / half-life)) over the movie's events: adding
    an event is one log-add, and since every movie's score decays by the same factor the
    order by `trend` is the order by the current decayed score — no rescans, no decay job.
    """

    __tablename__ = "movie_stats"

    movie_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    plays: Mapped[int] = mapped_column(Integer, default=0)
    trend: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


messaging_tables(Base.metadata)
movie_projection, tombstones = projection_tables(Base.metadata)
