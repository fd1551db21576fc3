"""`streamia seed-demo`: generated videos with Spanish and English subtitles."""

import shutil

import pytest

from streamia_kit.testing import serve_app
from streamia_movies.app import create_app
from streamia_movies.config import MoviesSettings
from streamia_movies.demo import DEMO_MOVIES, seed_demo


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
async def test_seeding_creates_playable_movies_with_two_subtitle_tracks_once(tmp_path):
    settings = MoviesSettings(environment="test", data_dir=tmp_path, log_level="WARNING")

    summary = await seed_demo(settings)
    again = await seed_demo(settings)

    assert f"{len(DEMO_MOVIES)} created" in summary
    assert "already present" in again
    async with serve_app(create_app(settings)) as client:
        body = (await client.get("/api/movies", params={"limit": 100})).json()
        assert body["total"] == len(DEMO_MOVIES)
        movie = next(m for m in body["data"] if m["title"] == "Acción en la Ciudad")
        assert [s["language"] for s in movie["subtitles"]] == ["en", "es"]
        assert movie["hasAudio"] is True and movie["duration"] > 4
        spanish = (await client.get(movie["subtitles"][1]["url"])).text
        assert "¡Corre! La persecución empieza ahora." in spanish
        video = await client.get(movie["videoUrl"], headers={"Range": "bytes=0-15"})
        assert video.status_code == 206 and video.content[4:8] == b"ftyp"
        found = (await client.get("/api/movies/explore", params={"search": "accion"})).json()
        assert movie["id"] in {m["id"] for m in found["data"]}
