"""The rules of comments and their moderation. Never commits: the boundary does."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_catalogue_projection import USER, MovieProjection, Tombstones, valid_id
from streamia_comments.comments import schemas
from streamia_comments.comments.models import FLAGGED, HIDDEN, VISIBLE, Author, Comment
from streamia_comments.comments.moderation import WordFilter
from streamia_comments.comments.repository import CommentGone, CommentsRepository
from streamia_kit.auth import Identity
from streamia_kit.errors import Forbidden, NotFound
from streamia_kit.events import CommentCreated, CommentDeleted, CommentHidden, MovieDeleted
from streamia_kit.messaging import Outbox

COMMENT_NOT_FOUND = "Comment not found"
BY_WORDS, BY_REPORTS, BY_ADMIN = "words", "reports", "admin"


@dataclass(slots=True)
class Shown:
    comment: Comment
    author: Author | None
    reports: int = 0


def _not_found() -> NotFound:
    return NotFound(COMMENT_NOT_FOUND, code="comment_not_found")


class CommentsService:
    def __init__(
        self,
        outbox: Outbox,
        movies: MovieProjection,
        tombstones: Tombstones,
        words: WordFilter,
        report_threshold: int,
        report_min_account_age_seconds: float = 0,
    ) -> None:
        self.outbox = outbox
        self.movies = movies
        self.tombstones = tombstones
        self.words = words
        self.report_threshold = max(1, report_threshold)
        self.report_min_account_age = report_min_account_age_seconds

    async def create(
        self, session: AsyncSession, identity: Identity, data: schemas.CreateCommentIn
    ) -> Shown:
        repo = CommentsRepository(session)
        found = await self.movies.lookup(session, data.movieId)
        await self.tombstones.hold_user(session, identity.id)
        movie = await self.movies.hold(session, found)
        flagged = self.words.flags(data.text)
        comment = await repo.add(
            Comment(
                user_id=identity.id,
                movie_id=movie.id,
                text=data.text,
                status=FLAGGED if flagged else VISIBLE,
                flag_reason=BY_WORDS if flagged else None,
            )
        )
        await self.outbox.add(
            session, CommentCreated(comment_id=comment.id, user_id=identity.id, movie_id=movie.id)
        )
        return Shown(comment, await repo.author(identity.id))

    async def list_for_movie(
        self, session: AsyncSession, movie_id: str, offset: int, limit: int
    ) -> tuple[list[Shown], int]:
        """Public: a slice of the visible comments, newest first, and the total."""
        if not valid_id(movie_id):
            return [], 0
        rows, total = await CommentsRepository(session).list_visible(movie_id, offset, limit)
        return [Shown(c, a) for c, a in rows], total

    async def reported_by(
        self, session: AsyncSession, identity: Identity, comment_ids: list[str]
    ) -> set[str]:
        """Which of these comments the caller has reported."""
        return await CommentsRepository(session).reported_by(identity.id, comment_ids)

    async def moderation_queue(
        self, session: AsyncSession, offset: int, limit: int
    ) -> tuple[list[Shown], int]:
        """A slice of the flagged and hidden comments, newest first, and the total."""
        rows, total = await CommentsRepository(session).list_for_moderation(offset, limit)
        return [Shown(c, a, n) for c, a, n in rows], total

    async def _existing(self, session: AsyncSession, comment_id: str) -> Comment:
        repo = CommentsRepository(session)
        comment = await repo.get(comment_id) if valid_id(comment_id) else None
        if comment is None:
            raise _not_found()
        return comment

    async def edit(
        self,
        session: AsyncSession,
        identity: Identity,
        comment_id: str,
        data: schemas.EditCommentIn,
    ) -> Shown:
        """The owner rewrites the text; the filter runs again, an admin's hiding stays."""
        repo = CommentsRepository(session)
        comment = await self._existing(session, comment_id)
        if comment.user_id != identity.id:
            raise Forbidden("You can only edit your own comments", code="not_owner")
        await self.tombstones.hold_user(session, identity.id)
        status, reason = comment.status, comment.flag_reason
        if status != HIDDEN:
            if self.words.flags(data.text):
                status, reason = FLAGGED, BY_WORDS
            elif reason == BY_WORDS:
                status, reason = VISIBLE, None
        updated = await repo.update(comment.id, text=data.text, status=status, flag_reason=reason)
        if updated is None:
            raise _not_found()
        return Shown(updated, await repo.author(updated.user_id))

    async def delete(self, session: AsyncSession, identity: Identity, comment_id: str) -> None:
        comment = await self._existing(session, comment_id)
        if comment.user_id != identity.id and not identity.is_admin:
            raise Forbidden("You can only delete your own comments", code="not_owner")
        deleted = await CommentsRepository(session).delete(comment.id)
        if deleted is None:
            raise _not_found()
        await self.outbox.add(
            session,
            CommentDeleted(
                comment_id=deleted.id, user_id=deleted.user_id, movie_id=deleted.movie_id
            ),
        )

    async def report(self, session: AsyncSession, identity: Identity, comment_id: str) -> None:
        """Flag a comment for moderation once enough distinct users whose accounts are old
        enough reported it (one account alone, or a handful made for the purpose, cannot hide
        anybody's comment); an admin's report hides it at once. Every report is kept: a young
        account's counts at a later report, once the account is old enough."""
        repo = CommentsRepository(session)
        comment = await self._existing(session, comment_id)
        if comment.status == HIDDEN and not identity.is_admin:
            raise _not_found()
        await self.tombstones.hold_user(session, identity.id)
        try:
            await repo.add_report(comment.id, identity.id)
        except CommentGone:
            raise _not_found() from None
        if identity.is_admin and comment.status != HIDDEN:
            await repo.update(comment.id, status=HIDDEN, flag_reason=BY_ADMIN)
            await self._tell_author(session, comment, BY_ADMIN)
        elif comment.status == VISIBLE:
            counted = await repo.established_report_count(
                comment.id, registered_by=time.time() - self.report_min_account_age
            )
            if counted >= self.report_threshold:
                await repo.update(comment.id, status=FLAGGED, flag_reason=BY_REPORTS)
                await self._tell_author(session, comment, BY_REPORTS)

    async def _tell_author(self, session: AsyncSession, comment: Comment, reason: str) -> None:
        """comment.hidden, in the same transaction as the change: the author gets an email."""
        movie = await self.movies.get(session, comment.movie_id)
        await self.outbox.add(
            session,
            CommentHidden(
                comment_id=comment.id,
                user_id=comment.user_id,
                movie_id=comment.movie_id,
                movie_title=movie.title if movie is not None else "",
                text=comment.text,
                reason=reason,
            ),
        )

    async def moderate(
        self, session: AsyncSession, comment_id: str, data: schemas.ModerateIn
    ) -> Shown:
        repo = CommentsRepository(session)
        before = await repo.get(comment_id) if valid_id(comment_id) else None
        was = before.status if before is not None else None  # the update refreshes `before`
        updated = None
        if before is not None:
            reason = None if data.status == VISIBLE else BY_ADMIN
            updated = await repo.update(comment_id, status=data.status, flag_reason=reason)
        if updated is None:
            raise _not_found()
        if updated.status == HIDDEN and was == VISIBLE:
            # Flagged ones were already out of view (the author was told when reports did it,
            # and saw the word filter's flag when posting).
            await self._tell_author(session, updated, BY_ADMIN)
        return Shown(updated, await repo.author(updated.user_id))

    async def remember_author(
        self,
        session: AsyncSession,
        user_id: str,
        first_name: str,
        last_name: str,
        version: float,
        registered_at: float | None = None,
    ) -> None:
        """user.registered / user.updated: a deleted account's names are not kept."""
        if valid_id(user_id) and await self.tombstones.guard(session, USER, user_id):
            await CommentsRepository(session).upsert_author(
                user_id, first_name, last_name, version, registered_at
            )

    async def forget_user(self, session: AsyncSession, user_id: str) -> None:
        """user.deleted: tombstone, then the user's comments, reports and names."""
        await self.tombstones.bury(session, USER, user_id)
        await CommentsRepository(session).remove_for_user(user_id)

    async def forget_movie(self, session: AsyncSession, event: MovieDeleted) -> None:
        await self.movies.remove(session, event)
        await CommentsRepository(session).remove_for_movie(event.movie_id)
