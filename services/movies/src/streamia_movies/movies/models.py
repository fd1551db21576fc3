"""Tables of the movies service's own database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from streamia_kit.db import NAMING, UTCDateTime, new_id, utcnow
from streamia_kit.messaging import messaging_tables


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# An integer key SQLite uses as the rowid (stable, unlike an implicit one), so the FTS5 index
# can point at it; PostgreSQL gets a bigint identity.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class Movie(Base):
    __tablename__ = "movies"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    category: Mapped[str | None] = mapped_column(String(100), nullable=True)
    cover_image: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    video_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    provider: Mapped[str] = mapped_column(String(20))
    video_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    poster_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # Where the poster file lives when not with the video (an uploaded cover of an external
    # movie is kept by this service's store); None: the video's provider.
    poster_provider: Mapped[str | None] = mapped_column(String(20), nullable=True)
    video_format: Mapped[str | None] = mapped_column(String(20), nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    has_audio: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The media's id at its provider when the movie came from the monolith (its
    # `cloudinaryPublicId`): old clients still look movies up by it.
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    # The rating projection (rating.* events); `rating_version` keeps the newest summary.
    rating_average: Mapped[float] = mapped_column(Float, default=0.0)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    rating_version: Mapped[float] = mapped_column(Float, default=0.0)
    # The playback projection (playback.started): distinct viewers, which only grows.
    plays: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Folded copies for case- and accent-insensitive filtering, sorting and search.
    title_key: Mapped[str] = mapped_column(String(200))
    category_key: Mapped[str] = mapped_column(String(100), default="")
    search_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    subtitles: Mapped[list[Subtitle]] = relationship(
        back_populates="movie",
        lazy="selectin",
        order_by="Subtitle.language",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (
        Index("ix_movies_created", "created_at", "seq"),
        Index("ix_movies_title", "title_key", "seq"),
        Index("ix_movies_rating", "rating_average", "rating_count", "seq"),
        Index("ix_movies_plays", "plays", "seq"),
        Index("ix_movies_category_created", "category_key", "created_at", "seq"),
        Index("ix_movies_category_title", "category_key", "title_key", "seq"),
        Index("ix_movies_category_rating", "category_key", "rating_average", "rating_count", "seq"),
        # SQLite only (see the explore_indexes migration): ix_movies_seq_category.
    )


class Subtitle(Base):
    __tablename__ = "subtitles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    movie_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("movies.id", ondelete="CASCADE"), index=True
    )
    language: Mapped[str] = mapped_column(String(35))
    label: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2048))
    provider: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    movie: Mapped[Movie] = relationship(back_populates="subtitles")

    __table_args__ = (UniqueConstraint("movie_id", "language", name="uq_subtitles_movie_language"),)


messaging_tables(Base.metadata)
