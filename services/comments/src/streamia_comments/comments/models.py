"""Tables of the comments service's own database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from streamia_catalogue_projection import projection_tables
from streamia_kit.db import NAMING, UTCDateTime, new_id, utcnow
from streamia_kit.messaging import messaging_tables

VISIBLE, FLAGGED, HIDDEN = "visible", "flagged", "hidden"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_movie_status_created", "movie_id", "status", "created_at"),
        Index("ix_comments_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    movie_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=VISIBLE)
    # Why a comment is flagged: "words" (the automatic filter) or "reports".
    flag_reason: Mapped[str | None] = mapped_column(String(10), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Report(Base):
    """One user's report of one comment (reporting twice counts once)."""

    __tablename__ = "comment_reports"

    comment_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True
    )
    reporter_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Author(Base):
    """Display names from user.registered / user.updated; never the email."""

    __tablename__ = "authors"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_name: Mapped[str] = mapped_column(Text)
    last_name: Mapped[str] = mapped_column(Text)
    version: Mapped[float] = mapped_column(Float)
    # When the account was made (epoch seconds, user.registered's time): reports count only
    # from accounts old enough. Null until user.registered arrives: such a reporter is new.
    registered_at: Mapped[float | None] = mapped_column(Float, nullable=True)


messaging_tables(Base.metadata)
movie_projection, tombstones = projection_tables(Base.metadata)
