"""What favorites, ratings and comments know about movies without asking the movie service:
a projection built from `movie.*` events, tombstones for deleted movies and users that stop a
write racing a deletion saga, and the one-call catch-up client for a projection that lags."""

from streamia_catalogue_projection.client import MovieClient, snapshot_from_api
from streamia_catalogue_projection.config import ProjectionSettings
from streamia_catalogue_projection.projection import (
    MOVIE_NOT_FOUND,
    Movie,
    MovieProjection,
    projection_tables,
)
from streamia_catalogue_projection.tombstones import MOVIE, USER, Tombstones, valid_id

__all__ = [
    "MOVIE",
    "MOVIE_NOT_FOUND",
    "USER",
    "Movie",
    "MovieClient",
    "MovieProjection",
    "ProjectionSettings",
    "Tombstones",
    "projection_tables",
    "snapshot_from_api",
    "valid_id",
]
