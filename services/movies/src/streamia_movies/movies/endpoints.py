"""HTTP endpoints of API.md's Movies section: parse, call the service, shape the response."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from streamia_kit.dependencies import AdminUser, ReadSession, WriteSession
from streamia_kit.errors import NotFound, ValidationFailed, error_body
from streamia_kit.lists import Page, list_headers
from streamia_kit.openapi import MULTIPART_FILE, multipart_body
from streamia_movies.config import MoviesSettings
from streamia_movies.dependencies import MoviesServiceDep, SettingsDep
from streamia_movies.media.formats import VIDEO_CONTENT_TYPES, content_type_for
from streamia_movies.media.images import check_image
from streamia_movies.media.streaming import MediaFileResponse
from streamia_movies.media.subtitles import MAX_SUBTITLE_BYTES, check_subtitle_filename
from streamia_movies.media.uploads import FileRule, human_size, receive_multipart, video_rule
from streamia_movies.movies import schemas
from streamia_movies.movies.service import MoviesService

router = APIRouter(prefix="/api/movies", tags=["movies"])
# The monolith's media-store status route, kept for its clients (whatever the store is).
status_router = APIRouter(prefix="/api/cloudinary", tags=["movies"])

# Paths whose bodies are streamed to disk by the endpoint, not capped by the JSON body limit.
UPLOAD_PATHS = ("/api/movies/upload",)


def is_upload_path(path: str) -> bool:
    return path in UPLOAD_PATHS or (
        path.startswith("/api/movies/") and path.endswith(("/subtitles", "/cover"))
    )


def _cover_rule(settings: MoviesSettings) -> FileRule:
    return FileRule(
        settings.max_cover_bytes,
        check_image,
        f"Cover exceeds the maximum size of {human_size(settings.max_cover_bytes)}",
    )


def _page_body(
    movies: MoviesServiceDep,
    page: Any,
    query: schemas.ListQuery,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """The monolith's envelope; the total and the neighbouring pages in headers too, as every
    list (API.md "Lists")."""
    response.headers.update(
        list_headers(request, len(page.items), page.total, Page(query.page, query.limit, True))
    )
    return {
        "source": movies.source,
        "data": [schemas.movie_out(m, movies.public_base) for m in page.items],
        "total": page.total,
        "page": query.page,
        "limit": query.limit,
    }


@router.get("")
async def list_movies(
    query: Annotated[schemas.ListQuery, Query()],
    movies: MoviesServiceDep,
    session: ReadSession,
    request: Request,
    response: Response,
) -> Any:
    page = await movies.browse(session, schemas.ExploreQuery(**query.model_dump()))
    return _page_body(movies, page, query, request, response)


@router.get("/explore")
async def explore(
    query: Annotated[schemas.ExploreQuery, Query()],
    movies: MoviesServiceDep,
    session: ReadSession,
    request: Request,
    response: Response,
) -> Any:
    page = await movies.browse(session, query)
    body = _page_body(movies, page, query, request, response)
    # Only the filters given, `{}` when none, as the monolith.
    given = {"category": query.category, "search": query.search}
    body["filters"] = {name: value for name, value in given.items() if value}
    return body


@router.post(
    "/upload",
    status_code=201,
    openapi_extra=multipart_body(
        ["video"],
        video=MULTIPART_FILE,
        title={"type": "string", "description": "default: the file's name"},
        description={"type": "string"},
        category={"type": "string"},
        cover=MULTIPART_FILE,
    ),
)
async def upload(
    _: AdminUser,
    request: Request,
    movies: MoviesServiceDep,
    session: WriteSession,
    settings: SettingsDep,
) -> Any:
    rules = {"video": video_rule(settings.max_upload_bytes), "cover": _cover_rule(settings)}
    form = await receive_multipart(
        request,
        movies.media.staging_dir,
        rules,
        idle_timeout=settings.upload_idle_timeout_seconds,
    )
    try:
        video, cover = form.files.get("video"), form.files.get("cover")
        fields = dict(form.fields)
        if video is not None and not fields.get("title", "").strip():
            fields["title"] = schemas.title_from_filename(video.filename)
        data = schemas.parse(schemas.UploadIn, fields)
        async with movies.media.stored_video(video, cover) as stored:
            movie = await movies.create_uploaded(session, data, stored)
    finally:
        form.cleanup()
    return {
        "message": "Movie uploaded successfully",
        "data": schemas.movie_out(movie, movies.public_base),
    }


@router.post("", status_code=201)
async def create_movie(
    body: schemas.CreateMovieIn, _: AdminUser, movies: MoviesServiceDep, session: WriteSession
) -> Any:
    movie = await movies.create_external(session, body)
    return {
        "message": "Movie created successfully",
        "data": schemas.movie_out(movie, movies.public_base),
    }


@router.get("/media/{key:path}", include_in_schema=False)
@router.head("/media/{key:path}", include_in_schema=False)
async def media_file(key: str, movies: MoviesServiceDep) -> Response:
    """Subtitle files and posters kept by the local store (Cloudinary serves its own)."""
    local = await movies.media.open_local(key)
    if local is None:
        raise NotFound("Media not found", code="media_not_found")
    suffix = PurePosixPath(key).suffix.lower().lstrip(".")
    media_type = {"vtt": "text/vtt; charset=utf-8", "jpg": "image/jpeg"}.get(suffix) or (
        content_type_for(suffix) if suffix in VIDEO_CONTENT_TYPES else "application/octet-stream"
    )
    return MediaFileResponse(
        local.path, local.stat, media_type, headers={"Cache-Control": "public, max-age=3600"}
    )


@router.get("/{movie_id}", response_model=Any)
async def get_movie(movie_id: str, request: Request) -> Response:
    # The hottest read: state straight off the app instead of two dependency solves, and
    # the (cached) representation encoded once by orjson instead of validated and then
    # serialized again by FastAPI. Same body, same content type.
    movies: MoviesService = request.app.state.movies
    data = await movies.get_public(movie_id)
    return Response(
        orjson.dumps({"source": movies.source, "data": data}), media_type="application/json"
    )


@router.put("/{movie_id}")
async def update_movie(
    movie_id: str,
    body: schemas.UpdateMovieIn,
    _: AdminUser,
    movies: MoviesServiceDep,
    session: WriteSession,
) -> Any:
    movie = await movies.update(session, movie_id, body)
    return {
        "message": "Movie updated successfully",
        "data": schemas.movie_out(movie, movies.public_base),
    }


@router.delete("/{movie_id}")
async def delete_movie(
    movie_id: str, _: AdminUser, movies: MoviesServiceDep, session: WriteSession
) -> Any:
    await movies.delete(session, movie_id)
    return {"message": "Movie deleted successfully"}


@router.post(
    "/{movie_id}/subtitles",
    openapi_extra=multipart_body(
        ["subtitle", "language"],
        subtitle=MULTIPART_FILE,
        language={"type": "string", "example": "es"},
        label={"type": "string"},
    ),
)
async def upload_subtitle(
    movie_id: str,
    _: AdminUser,
    request: Request,
    movies: MoviesServiceDep,
    session: WriteSession,
    settings: SettingsDep,
) -> Any:
    rule = FileRule(
        min(settings.max_subtitle_bytes, MAX_SUBTITLE_BYTES),
        lambda filename, _head: check_subtitle_filename(filename),
        "Subtitle file too large",
    )
    form = await receive_multipart(
        request,
        movies.media.staging_dir,
        {"subtitle": rule},
        idle_timeout=settings.upload_idle_timeout_seconds,
    )
    try:
        data = schemas.parse(schemas.SubtitleIn, form.fields)
        subtitles = await movies.add_subtitle(session, movie_id, data, form.files.get("subtitle"))
    finally:
        form.cleanup()
    return {
        "message": "Subtitle uploaded successfully",
        "data": [schemas.subtitle_out(s, movies.public_base) for s in subtitles],
    }


@router.put("/{movie_id}/cover", openapi_extra=multipart_body(["cover"], cover=MULTIPART_FILE))
async def upload_cover(
    movie_id: str,
    _: AdminUser,
    request: Request,
    movies: MoviesServiceDep,
    session: WriteSession,
    settings: SettingsDep,
) -> Any:
    """Multipart `cover` (PNG, JPEG or WebP): stored re-encoded as the movie's poster."""
    form = await receive_multipart(
        request,
        movies.media.staging_dir,
        {"cover": _cover_rule(settings)},
        idle_timeout=settings.upload_idle_timeout_seconds,
    )
    try:
        cover = form.files.get("cover")
        if cover is None:
            raise ValidationFailed({"cover": ["A cover image is required"]})
        await movies.get(session, movie_id)  # 404 before any file is stored
        stored = await movies.media.save_cover(movie_id, cover)
        movie = await movies.replace_cover(session, movie_id, stored)
    finally:
        form.cleanup()
    data = schemas.movie_out(movie, movies.public_base)
    return {"message": "Cover updated successfully", "data": data}


@router.get("/{movie_id}/subtitles")
async def list_subtitles(movie_id: str, movies: MoviesServiceDep, session: ReadSession) -> Any:
    movie, subtitles = await movies.subtitles(session, movie_id)
    return {
        "movie": movie.title,
        "subtitles": [schemas.subtitle_out(s, movies.public_base) for s in subtitles],
    }


@router.get("/{movie_id}/stream")
@router.head("/{movie_id}/stream")
async def stream(movie_id: str, movies: MoviesServiceDep, session: ReadSession) -> Response:
    """The video bytes with HTTP Range; media kept elsewhere is a redirect to its URL."""
    movie, local = await movies.local_video(session, movie_id)
    if local is not None:
        return MediaFileResponse(local.path, local.stat, content_type_for(movie.video_format))
    if movie.provider != "local" and movie.video_url:
        return RedirectResponse(movie.video_url, status_code=302)
    raise NotFound("Video not found", code="video_not_found")


@status_router.get("/status")
async def media_store_status(movies: MoviesServiceDep) -> Response:
    """200 when the active media store can take media now, 503 (and why) when it cannot."""
    problem = await movies.media.store.problem()
    if problem is None:
        message = f"Media store '{movies.source}' is ready"
        return JSONResponse({"status": "ok", "message": message, "configured": True})
    body = {
        **error_body(problem, "media_store_unavailable"),
        "status": "error",
        "configured": True,
    }
    return JSONResponse(body, status_code=503)
