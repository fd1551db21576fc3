"""The only place the comments service talks SQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, case, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from streamia_comments.comments.models import FLAGGED, HIDDEN, VISIBLE, Author, Comment, Report
from streamia_kit.db import utcnow
from streamia_kit.lists import count_rows
from streamia_kit.repository import Repository


class CommentGone(Exception):
    """The comment was deleted while a report of it was being written."""


Row = tuple[Comment, Author | None]


class CommentsRepository(Repository[Comment]):
    def _with_author(self) -> Select[Comment, Author]:
        return select(Comment, Author).outerjoin(Author, Author.user_id == Comment.user_id)

    async def list_visible(self, movie_id: str, offset: int, limit: int) -> tuple[list[Row], int]:
        """A slice of a movie's visible comments, newest first, and how many there are."""
        query = (
            self._with_author()
            .where(Comment.movie_id == movie_id, Comment.status == VISIBLE)
            .order_by(Comment.created_at.desc(), Comment.id.desc())
        )
        rows = await self.session.execute(query.offset(offset).limit(limit))
        return [(c, a) for c, a in rows], await count_rows(self.session, query)

    async def list_for_moderation(
        self, offset: int, limit: int
    ) -> tuple[list[tuple[Comment, Author | None, int]], int]:
        reports = (
            select(func.count())
            .select_from(Report)
            .where(Report.comment_id == Comment.id)
            .scalar_subquery()
        )
        query = (
            select(Comment, Author, reports)
            .outerjoin(Author, Author.user_id == Comment.user_id)
            # Reported but still visible (below the threshold) too: admins see it coming.
            .where(or_(Comment.status.in_([FLAGGED, HIDDEN]), reports > 0))
            .order_by(Comment.created_at.desc(), Comment.id.desc())
        )
        rows = await self.session.execute(query.offset(offset).limit(limit))
        return [(c, a, n) for c, a, n in rows], await count_rows(self.session, query)

    async def get(self, comment_id: str) -> Comment | None:
        return await self.session.scalar(
            select(Comment)
            .where(Comment.id == comment_id)
            .execution_options(populate_existing=True)
        )

    async def author(self, user_id: str) -> Author | None:
        return await self.session.get(Author, user_id)

    async def update(self, comment_id: str, **values: object) -> Comment | None:
        return await self.session.scalar(
            update(Comment)
            .where(Comment.id == comment_id)
            .values(**values, updated_at=utcnow())
            .returning(Comment)
            .execution_options(populate_existing=True)
        )

    async def delete(self, comment_id: str) -> Comment | None:
        return await self.session.scalar(
            delete(Comment).where(Comment.id == comment_id).returning(Comment)
        )

    async def add_report(self, comment_id: str, reporter_id: str) -> bool:
        """Record a report; False when this user had already reported the comment."""
        try:
            inserted = await self.session.scalar(
                self.insert(Report)
                .values(comment_id=comment_id, reporter_id=reporter_id, created_at=utcnow())
                .on_conflict_do_nothing()
                .returning(Report.reporter_id)
            )
        except IntegrityError as exc:
            raise CommentGone from exc
        return inserted is not None

    async def reported_by(self, reporter_id: str, comment_ids: Sequence[str]) -> set[str]:
        """Which of these comments this user has reported."""
        if not comment_ids:
            return set()
        rows = await self.session.scalars(
            select(Report.comment_id).where(
                Report.reporter_id == reporter_id, Report.comment_id.in_(comment_ids)
            )
        )
        return set(rows)

    async def established_report_count(self, comment_id: str, registered_by: float) -> int:
        """Reporters of the comment whose accounts were made by `registered_by` (epoch s)."""
        return (
            await self.session.scalar(
                select(func.count())
                .select_from(Report)
                .join(Author, Author.user_id == Report.reporter_id)
                .where(Report.comment_id == comment_id, Author.registered_at <= registered_by)
            )
            or 0
        )

    async def upsert_author(
        self,
        user_id: str,
        first_name: str,
        last_name: str,
        version: float,
        registered_at: float | None = None,
    ) -> None:
        """Keep the newest names (events can arrive out of order) and the first known
        registration time (only user.registered brings one, maybe after a user.updated)."""
        stmt = self.insert(Author).values(
            user_id=user_id,
            first_name=first_name,
            last_name=last_name,
            version=version,
            registered_at=registered_at,
        )
        newer = Author.version < stmt.excluded.version
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Author.user_id],
                set_={
                    "first_name": case((newer, stmt.excluded.first_name), else_=Author.first_name),
                    "last_name": case((newer, stmt.excluded.last_name), else_=Author.last_name),
                    "version": case((newer, stmt.excluded.version), else_=Author.version),
                    "registered_at": func.coalesce(
                        Author.registered_at, stmt.excluded.registered_at
                    ),
                },
            )
        )

    async def upsert_authors(self, authors: Sequence[tuple[str, str, str, float]]) -> None:
        """`upsert_author` for many (user id, first name, last name, version) at once, from
        the monolith's import: accounts at least as old as their version."""
        if not authors:
            return
        stmt = self.insert(Author)
        newer = Author.version < stmt.excluded.version
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Author.user_id],
                set_={
                    "first_name": case((newer, stmt.excluded.first_name), else_=Author.first_name),
                    "last_name": case((newer, stmt.excluded.last_name), else_=Author.last_name),
                    "version": case((newer, stmt.excluded.version), else_=Author.version),
                    "registered_at": func.coalesce(
                        Author.registered_at, stmt.excluded.registered_at
                    ),
                },
            ),
            [
                {"user_id": u, "first_name": f, "last_name": last, "version": v, "registered_at": v}
                for u, f, last, v in authors
            ],
        )

    async def remove_for_user(self, user_id: str) -> None:
        await self.session.execute(delete(Report).where(Report.reporter_id == user_id))
        await self.session.execute(delete(Comment).where(Comment.user_id == user_id))
        await self.session.execute(delete(Author).where(Author.user_id == user_id))

    async def remove_for_movie(self, movie_id: str) -> None:
        await self.session.execute(delete(Comment).where(Comment.movie_id == movie_id))
