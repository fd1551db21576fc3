"""Favorites service settings."""

from __future__ import annotations

from typing import ClassVar

from streamia_catalogue_projection import ProjectionSettings


class FavoritesSettings(ProjectionSettings):
    service_name: ClassVar[str] = "favorites"
