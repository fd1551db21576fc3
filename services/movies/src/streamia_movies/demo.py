"""`streamia seed-demo`: a handful of movies with generated videos and es/en subtitles."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

import structlog

from streamia_movies.media.formats import SNIFF_BYTES
from streamia_movies.media.uploads import StagedFile
from streamia_movies.movies import schemas
from streamia_movies.movies.service import MoviesService

log = structlog.get_logger("streamia.movies.demo")

# title, category, description, testsrc pattern, tone (Hz), Spanish line, English line
DEMO_MOVIES = [
    (
        "Acción en la Ciudad",
        "Acción",
        "Persecuciones por los tejados de Madrid.",
        "testsrc2",
        440,
        "¡Corre! La persecución empieza ahora.",
        "Run! The chase starts now.",
    ),
    (
        "El Último Verano",
        "Drama",
        "Una familia pasa su último verano juntos en Galicia.",
        "smptebars",
        330,
        "Mañana todo será distinto.",
        "Tomorrow everything will be different.",
    ),
    (
        "Risas en el Metro",
        "Comedia",
        "Un malentendido en la línea 6 se complica.",
        "rgbtestsrc",
        523,
        "¿Quién ha dejado este pingüino aquí?",
        "Who left this penguin here?",
    ),
    (
        "Niebla",
        "Terror",
        "Algo se esconde en la niebla del pueblo.",
        "testsrc",
        220,
        "No abras esa puerta, por favor.",
        "Please don't open that door.",
    ),
    (
        "Órbita",
        "Ciencia ficción",
        "Una ingeniera repara la estación antes del amanecer.",
        "smptehdbars",
        660,
        "Quedan tres minutos de oxígeno.",
        "Three minutes of oxygen left.",
    ),
]

FALLBACK_VIDEO = "https://interactive-examples.mdn.mozilla.net/media/cc0-videos/flower.mp4"


def _srt(line: str) -> bytes:
    """A Windows-1252 SRT, like the Spanish files people really upload."""
    text = (
        f"1\r\n00:00:00,500 --> 00:00:02,500\r\n{line}\r\n\r\n"
        f"2\r\n00:00:02,800 --> 00:00:04,500\r\n— Streamia demo —\r\n"
    )
    return text.encode("cp1252")


def _vtt(line: str) -> bytes:
    return (
        f"WEBVTT\n\n00:00:00.500 --> 00:00:02.500\n{line}\n\n"
        "00:00:02.800 --> 00:00:04.500\n— Streamia demo —\n"
    ).encode()


async def _generate(path: Path, pattern: str, tone: int, seconds: int = 5) -> bool:
    """A small H.264/AAC mp4 from ffmpeg's test sources (a few hundred KB)."""
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"{pattern}=size=640x360:rate=24:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency={tone}:duration={seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", "-shortest", str(path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        return await asyncio.wait_for(proc.wait(), 120) == 0 and path.exists()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False


def _staged(field: str, path: Path, filename: str) -> StagedFile:
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    return StagedFile(field, filename, None, path, path.stat().st_size, head)


async def seed_demo(target: Any) -> str:
    """Seed the catalogue. `target` is the movies app (as `streamia seed-demo` passes it) or
    MoviesSettings, in which case an app is created, started and stopped here."""
    if hasattr(target, "state"):
        return await _seed(target)
    from streamia_movies.app import create_app

    app = create_app(target)
    service = app.state.service
    await service.start()
    try:
        summary = await _seed(app)
        await service.relay.drain()
        return summary
    finally:
        await service.stop()


async def _seed(app: Any) -> str:
    movies: MoviesService = app.state.movies
    db = app.state.service.db
    have_ffmpeg = shutil.which("ffmpeg") is not None
    created: list[str] = []
    staging = movies.store.staging_dir
    staging.mkdir(parents=True, exist_ok=True)
    for title, category, description, pattern, tone, es, en in DEMO_MOVIES:
        async with db.sessions() as session:
            existing = await movies.browse(session, schemas.ExploreQuery(search=title, limit=100))
        if any(m.title == title for m in existing.items):
            continue
        with tempfile.TemporaryDirectory(dir=staging) as tmp:
            work = Path(tmp)
            video = work / "demo.mp4"
            if have_ffmpeg and await _generate(video, pattern, tone):
                data = schemas.UploadIn(title=title, description=description, category=category)
                async with movies.stored_video(_staged("video", video, "demo.mp4")) as stored:
                    async with db.transaction() as session:
                        movie = await movies.create_uploaded(session, data, stored)
            else:
                async with db.transaction() as session:
                    movie = await movies.create_external(
                        session,
                        schemas.CreateMovieIn(
                            title=title,
                            description=description,
                            category=category,
                            videoUrl=FALLBACK_VIDEO,
                            videoFormat="mp4",
                        ),
                    )
            for language, name, content in (("es", "es.srt", _srt(es)), ("en", "en.vtt", _vtt(en))):
                sub = work / name
                sub.write_bytes(content)
                async with db.transaction() as session:
                    await movies.add_subtitle(
                        session,
                        movie.id,
                        schemas.SubtitleIn(language=language),
                        _staged("subtitle", sub, name),
                    )
            await movies.invalidate(movie.id)
            await movies.catalogue_changed()
            created.append(title)
    if not have_ffmpeg:
        log.warning("demo_without_ffmpeg", hint="install ffmpeg for generated demo videos")
    if not created:
        return "Demo movies: already present"
    return f"Demo movies: {len(created)} created ({', '.join(created)})"
