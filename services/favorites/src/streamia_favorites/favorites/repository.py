"""The only place the favorites service talks SQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from streamia_favorites.favorites.models import Favorite, movie_projection
from streamia_kit.db import utcnow
from streamia_kit.lists import count_rows
from streamia_kit.repository import Repository


class DuplicateFavorite(Exception):
    """The (user, movie) pair already exists (a concurrent add won)."""


class FavoritesRepository(Repository[Favorite]):
    async def list_for_user(
        self, user_id: str, offset: int, limit: int
    ) -> tuple[Sequence[Favorite], int]:
        """A slice of the user's favorites, newest first, leaving out movies already
        tombstoned, and how many there are in all."""
        query = (
            select(Favorite)
            .outerjoin(movie_projection, movie_projection.c.movie_id == Favorite.movie_id)
            .where(Favorite.user_id == user_id, movie_projection.c.deleted.isnot(True))
            .order_by(Favorite.created_at.desc(), Favorite.id.desc())
        )
        items = (await self.session.scalars(query.offset(offset).limit(limit))).all()
        return items, await count_rows(self.session, query)

    async def find(self, user_id: str, movie_id: str) -> Favorite | None:
        return await self.session.scalar(
            select(Favorite).where(Favorite.user_id == user_id, Favorite.movie_id == movie_id)
        )

    async def add(self, instance: Favorite) -> Favorite:
        try:
            return await super().add(instance)
        except IntegrityError as exc:
            raise DuplicateFavorite from exc

    async def update_note(
        self, favorite_id: str, user_id: str, note: str | None
    ) -> Favorite | None:
        return await self.session.scalar(
            update(Favorite)
            .where(Favorite.id == favorite_id, Favorite.user_id == user_id)
            .values(note=note, updated_at=utcnow())
            .returning(Favorite)
        )

    async def remove(self, user_id: str, movie_id: str) -> Favorite | None:
        return await self.session.scalar(
            delete(Favorite)
            .where(Favorite.user_id == user_id, Favorite.movie_id == movie_id)
            .returning(Favorite)
        )

    async def remove_for_user(self, user_id: str) -> None:
        await self.session.execute(delete(Favorite).where(Favorite.user_id == user_id))

    async def remove_for_movie(self, movie_id: str) -> None:
        await self.session.execute(delete(Favorite).where(Favorite.movie_id == movie_id))
