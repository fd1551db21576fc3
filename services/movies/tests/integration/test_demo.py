"""`streamia seed-demo`: clips made with PyAV, posters from their frames, es/en subtitles."""

import io
import re

from PIL import Image

from streamia_kit.testing import serve_app
from streamia_movies.app import create_app
from streamia_movies.config import MoviesSettings
from streamia_movies.demo import DEMO_MOVIES, cues, seed_demo

SECONDS = 3  # the real catalogue is 24 s a clip; the shape is the same


def _cue_ends(vtt: str) -> list[float]:
    ends = re.findall(r"--> (\d\d):(\d\d):(\d\d)\.(\d\d\d)", vtt)
    return [int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000 for h, m, s, ms in ends]


async def test_seeding_creates_every_demo_movie_once_playable_with_poster_and_subtitles(tmp_path):
    settings = MoviesSettings(environment="test", data_dir=tmp_path, log_level="WARNING")

    summary = await seed_demo(settings, seconds=SECONDS)
    again = await seed_demo(settings, seconds=SECONDS)

    assert f"{len(DEMO_MOVIES)} created" in summary
    assert "already present" in again
    async with serve_app(create_app(settings)) as client:
        body = (await client.get("/api/movies", params={"limit": 100})).json()
        assert body["total"] == len(DEMO_MOVIES) >= 8
        assert len({m["category"] for m in body["data"]}) == len(DEMO_MOVIES)
        posters = set()
        for movie in body["data"]:
            assert movie["provider"] == "local" and movie["videoFormat"] == "mp4"
            assert movie["hasAudio"] is True
            assert abs(movie["duration"] - SECONDS) < 0.2
            video = await client.get(movie["videoUrl"], headers={"Range": "bytes=0-"})
            assert video.status_code == 206
            # faststart: the index (moov) comes before the media data (mdat).
            assert -1 < video.content.find(b"moov") < video.content.find(b"mdat")
            poster = await client.get(movie["coverImage"])
            with Image.open(io.BytesIO(poster.content)) as image:
                assert image.format == "JPEG" and image.width == 640
            posters.add(poster.content)
            assert [s["language"] for s in movie["subtitles"]] == ["en", "es"]
            for track in movie["subtitles"]:
                vtt = (await client.get(track["url"])).text
                assert vtt.startswith("WEBVTT")
                ends = _cue_ends(vtt)
                assert ends and max(ends) <= movie["duration"]
        assert len(posters) == len(DEMO_MOVIES)  # every movie looks different
        action = next(m for m in body["data"] if m["title"] == "Acción en la Ciudad")
        spanish = (await client.get(action["subtitles"][1]["url"])).text
        assert "¡Corre! La persecución empieza ahora." in spanish
        found = (await client.get("/api/movies/explore", params={"search": "accion"})).json()
        assert action["id"] in {m["id"] for m in found["data"]}


def test_cues_cover_the_whole_video_and_never_run_past_its_end():
    timeline = cues(("uno", "dos"), 24.0)

    assert timeline[0][0] == 0.5 and timeline[-1][1] <= 24.0
    assert timeline[-1][1] > 20.0
    assert [text for _, _, text in timeline[:3]] == ["uno", "dos", "uno"]
