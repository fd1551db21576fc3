"""The demo catalogue: eight short movies made with PyAV, with posters and es/en subtitles.

Each clip is encoded in a child process (two at a time on two cores), then goes through the
same path as an admin's upload: probed, given a poster from its own frames, stored locally
and streamed with Range. Nothing is fetched from anywhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog

from streamia_movies.media.formats import SNIFF_BYTES
from streamia_movies.media.prober import run_module
from streamia_movies.media.synth import ClipSpec
from streamia_movies.media.uploads import StagedFile
from streamia_movies.movies import schemas
from streamia_movies.movies.service import MoviesService

log = structlog.get_logger("streamia.movies.demo")

DEMO_SECONDS = 24
_CLIP_TIMEOUT = 300.0  # generous: a loaded machine, never a hostile input
_CUE_EVERY = 4.0


@dataclass(frozen=True)
class DemoMovie:
    title: str
    category: str
    description: str
    colors: tuple[str, str]
    accent: str
    tone: int
    spanish: tuple[str, ...]
    english: tuple[str, ...]


DEMO_MOVIES = (
    DemoMovie(
        "Acción en la Ciudad", "Acción", "Persecuciones por los tejados de Madrid.",
        ("#b3001b", "#1a0005"), "#ffd000", 440,
        ("¡Corre! La persecución empieza ahora.", "Por los tejados, ¡rápido!"),
        ("Run! The chase starts now.", "Over the rooftops, quick!"),
    ),
    DemoMovie(
        "El Último Verano", "Drama", "Una familia pasa su último verano juntos en Galicia.",
        ("#f4a259", "#5b3a29"), "#fff1d0", 330,
        ("Mañana todo será distinto.", "Quédate un poco más."),
        ("Tomorrow everything will be different.", "Stay a little longer."),
    ),
    DemoMovie(
        "Risas en el Metro", "Comedia", "Un malentendido en la línea 6 se complica.",
        ("#3ec1d3", "#0b4f6c"), "#ff5da2", 523,
        ("¿Quién ha dejado este pingüino aquí?", "¡Próxima estación: el zoo!"),
        ("Who left this penguin here?", "Next stop: the zoo!"),
    ),
    DemoMovie(
        "Niebla", "Terror", "Algo se esconde en la niebla del pueblo.",
        ("#4a4e69", "#0d0d0d"), "#c9184a", 220,
        ("No abras esa puerta, por favor.", "¿Has oído eso?"),
        ("Please don't open that door.", "Did you hear that?"),
    ),
    DemoMovie(
        "Órbita", "Ciencia ficción", "Una ingeniera repara la estación antes del amanecer.",
        ("#03045e", "#000814"), "#90e0ef", 660,
        ("Quedan tres minutos de oxígeno.", "Control, aquí Órbita."),
        ("Three minutes of oxygen left.", "Control, this is Orbit."),
    ),
    DemoMovie(
        "Corazones en Sevilla", "Romance", "Dos músicos coinciden cada tarde en la misma plaza.",
        ("#ff8fab", "#6a0136"), "#ffe5ec", 392,
        ("¿Tocamos juntos mañana?", "Esta canción es para ti."),
        ("Shall we play together tomorrow?", "This song is for you."),
    ),
    DemoMovie(
        "El Bosque Dormido", "Animación", "Un zorro despierta al bosque antes del invierno.",
        ("#2d6a4f", "#081c15"), "#ffb703", 294,
        ("¡Despertad, que llega la nieve!", "El búho sabe el camino."),
        ("Wake up, the snow is coming!", "The owl knows the way."),
    ),
    DemoMovie(
        "Océanos de Hielo", "Documental", "Un año con los científicos de la Antártida.",
        ("#caf0f8", "#0077b6"), "#023e8a", 587,
        ("El hielo guarda mil años de historia.", "Aquí nadie está solo."),
        ("The ice keeps a thousand years of history.", "Nobody is alone here."),
    ),
)  # fmt: skip


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02}:{minutes:02}:{rest // 1000:02}{separator}{rest % 1000:03}"


def cues(lines: tuple[str, ...], seconds: float) -> list[tuple[float, float, str]]:
    """A cue every four seconds from 0.5 s to the end of the video, cycling through `lines`."""
    out: list[tuple[float, float, str]] = []
    start = 0.5
    while start + 1.0 <= seconds:
        out.append(
            (start, min(start + _CUE_EVERY - 0.5, seconds - 0.1), lines[len(out) % len(lines)])
        )
        start += _CUE_EVERY
    return out


def srt(lines: tuple[str, ...], seconds: float) -> bytes:
    """A Windows-1252 SRT, like the Spanish files people really upload."""
    blocks = [
        f"{n}\r\n{_timestamp(a, ',')} --> {_timestamp(b, ',')}\r\n{text}\r\n"
        for n, (a, b, text) in enumerate(cues(lines, seconds), 1)
    ]
    return "\r\n".join(blocks).encode("cp1252")


def vtt(lines: tuple[str, ...], seconds: float) -> bytes:
    blocks = [
        f"{_timestamp(a, '.')} --> {_timestamp(b, '.')}\n{text}\n"
        for a, b, text in cues(lines, seconds)
    ]
    return ("WEBVTT\n\n" + "\n".join(blocks)).encode()


def _staged(field: str, path: Path, filename: str) -> StagedFile:
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    return StagedFile(field, filename, None, path, path.stat().st_size, head)


async def make_clip(path: Path, movie: DemoMovie, seconds: int) -> None:
    """Encode one demo clip in a child process (PyAV holds the GIL for much of the work)."""
    spec = ClipSpec(movie.title, movie.colors, movie.accent, movie.tone, seconds=seconds)
    code, _, err = await run_module(
        "streamia_movies.media.synth", (str(path), json.dumps(asdict(spec))), _CLIP_TIMEOUT
    )
    if code != 0:
        raise RuntimeError(
            f"demo clip {movie.title!r} failed: {err.decode(errors='replace')[-500:]}"
        )


async def seed_demo(
    target: Any, seconds: int = DEMO_SECONDS, on_created: Callable[[str], None] | None = None
) -> str:
    """Seed the missing demo movies. `target` is the movies app (as `streamia seed-demo`
    passes it) or MoviesSettings, in which case an app is created, started and stopped here."""
    if hasattr(target, "state"):
        return await _seed(target, seconds, on_created)
    from streamia_movies.app import create_app

    app = create_app(target)
    service = app.state.service
    await service.start()
    try:
        summary = await _seed(app, seconds, on_created)
        await service.relay.drain()
        return summary
    finally:
        await service.stop()


async def _seed(app: Any, seconds: int, on_created: Callable[[str], None] | None) -> str:
    movies: MoviesService = app.state.movies
    db = app.state.service.db
    async with db.sessions() as session:
        present = {
            m.title
            for movie in DEMO_MOVIES
            for m in (
                await movies.browse(session, schemas.ExploreQuery(search=movie.title, limit=100))
            ).items
        }
    missing = [m for m in DEMO_MOVIES if m.title not in present]
    if not missing:
        return "Demo movies: already present"
    staging = movies.media.staging_dir
    staging.mkdir(parents=True, exist_ok=True)
    encoders = asyncio.Semaphore(os.cpu_count() or 1)
    writes = asyncio.Lock()

    async def one(movie: DemoMovie) -> None:
        with tempfile.TemporaryDirectory(dir=staging) as tmp:
            work = Path(tmp)
            clip = work / "demo.mp4"
            async with encoders:
                await make_clip(clip, movie, seconds)
            data = schemas.UploadIn(
                title=movie.title, description=movie.description, category=movie.category
            )
            async with movies.media.stored_video(_staged("video", clip, "demo.mp4")) as stored:
                async with writes, db.transaction() as session:
                    created = await movies.create_uploaded(session, data, stored)
            duration = stored.duration or float(seconds)
            tracks = (
                ("es", "es.srt", srt(movie.spanish, duration)),
                ("en", "en.vtt", vtt(movie.english, duration)),
            )
            for language, name, content in tracks:
                sub = work / name
                sub.write_bytes(content)
                async with writes, db.transaction() as session:
                    await movies.add_subtitle(
                        session,
                        created.id,
                        schemas.SubtitleIn(language=language),
                        _staged("subtitle", sub, name),
                    )
        if on_created is not None:
            on_created(movie.title)

    async with asyncio.TaskGroup() as group:  # one failure cancels the other encodes
        for movie in missing:
            group.create_task(one(movie))
    return f"Demo movies: {len(missing)} created ({', '.join(m.title for m in missing)})"
