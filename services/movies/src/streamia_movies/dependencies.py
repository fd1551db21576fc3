"""Annotated dependency aliases of the movies service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from streamia_movies.config import MoviesSettings
from streamia_movies.movies.service import MoviesService


async def _movies(request: Request) -> MoviesService:
    return request.app.state.movies


async def _settings(request: Request) -> MoviesSettings:
    return request.app.state.service.settings


MoviesServiceDep = Annotated[MoviesService, Depends(_movies)]
SettingsDep = Annotated[MoviesSettings, Depends(_settings)]
