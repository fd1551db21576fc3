"""The rules of favorites. Never commits: the boundary does."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_catalogue_projection import USER, Movie, MovieProjection, Tombstones, valid_id
from streamia_favorites.favorites import schemas
from streamia_favorites.favorites.models import Favorite
from streamia_favorites.favorites.repository import DuplicateFavorite, FavoritesRepository
from streamia_kit.auth import Identity
from streamia_kit.errors import Conflict, NotFound
from streamia_kit.events import FavoriteAdded, FavoriteRemoved, MovieDeleted
from streamia_kit.messaging import Outbox

ALREADY_FAVORITE = "This movie is already in your favorites"
NOT_FAVORITE = "This movie is not in your favorites"
FAVORITE_NOT_FOUND = "Favorite not found"


@dataclass(slots=True)
class Entry:
    favorite: Favorite
    movie: Movie | None


class FavoritesService:
    def __init__(self, outbox: Outbox, movies: MovieProjection, tombstones: Tombstones) -> None:
        self.outbox = outbox
        self.movies = movies
        self.tombstones = tombstones

    async def list(
        self, session: AsyncSession, identity: Identity, offset: int, limit: int
    ) -> tuple[list[Entry], int]:
        """A slice of the caller's favorites with their movies, and the total."""
        repo = FavoritesRepository(session)
        favorites, total = await repo.list_for_user(identity.id, offset, limit)
        movies = await self.movies.get_many(session, (f.movie_id for f in favorites))
        return [Entry(f, movies.get(f.movie_id)) for f in favorites], total

    async def add(
        self, session: AsyncSession, identity: Identity, data: schemas.AddFavoriteIn
    ) -> Entry:
        repo = FavoritesRepository(session)
        found = await self.movies.lookup(session, data.movieId)
        await self.tombstones.hold_user(session, identity.id)
        movie = await self.movies.hold(session, found)
        if await repo.find(identity.id, movie.id) is not None:
            raise Conflict(ALREADY_FAVORITE, code="already_favorite")
        try:
            favorite = await repo.add(
                Favorite(user_id=identity.id, movie_id=movie.id, note=data.note)
            )
        except DuplicateFavorite:
            raise Conflict(ALREADY_FAVORITE, code="already_favorite") from None
        await self.outbox.add(
            session,
            FavoriteAdded(
                favorite_id=favorite.id,
                user_id=identity.id,
                movie_id=movie.id,
            ),
        )
        return Entry(favorite, movie)

    async def update_note(
        self,
        session: AsyncSession,
        identity: Identity,
        favorite_id: str,
        data: schemas.UpdateNoteIn,
    ) -> Entry:
        """Only the owner's own favorites can be addressed; anyone else's do not exist."""
        favorite = None
        if valid_id(favorite_id):
            favorite = await FavoritesRepository(session).update_note(
                favorite_id, identity.id, data.note
            )
        if favorite is None:
            raise NotFound(FAVORITE_NOT_FOUND, code="favorite_not_found")
        return Entry(favorite, await self.movies.get(session, favorite.movie_id))

    async def remove(self, session: AsyncSession, identity: Identity, movie_id: str) -> Entry:
        favorite = None
        if valid_id(movie_id):
            favorite = await FavoritesRepository(session).remove(identity.id, movie_id)
        if favorite is None:
            raise NotFound(NOT_FAVORITE, code="favorite_not_found")
        await self.outbox.add(
            session,
            FavoriteRemoved(
                favorite_id=favorite.id,
                user_id=identity.id,
                movie_id=movie_id,
            ),
        )
        return Entry(favorite, await self.movies.get(session, movie_id))

    async def forget_user(self, session: AsyncSession, user_id: str) -> None:
        """user.deleted: tombstone first, so no write can slip in behind the cleanup."""
        await self.tombstones.bury(session, USER, user_id)
        await FavoritesRepository(session).remove_for_user(user_id)

    async def forget_movie(self, session: AsyncSession, event: MovieDeleted) -> None:
        """movie.deleted: tombstone the movie, then remove every favorite of it."""
        await self.movies.remove(session, event)
        await FavoritesRepository(session).remove_for_movie(event.movie_id)
