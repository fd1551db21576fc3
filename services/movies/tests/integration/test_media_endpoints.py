"""Uploads, Range streaming, subtitles and the media-deletion saga step, through the API."""

import io
import uuid

import pytest
from PIL import Image

from streamia_kit.testing import wait_for
from streamia_movies.media.storage import LocalMediaStore, MediaStoreError


async def test_an_uploaded_video_is_probed_and_gets_a_poster(client, upload, clip):
    resp = await upload(client, title="Acción", description="d", category="Drama")

    assert resp.status_code == 201, resp.text
    movie = resp.json()["data"]
    assert resp.json()["message"]
    assert (movie["provider"], movie["videoFormat"], movie["hasAudio"]) == ("local", "mp4", True)
    assert movie["duration"] == pytest.approx(3.0, abs=0.2)
    assert movie["videoUrl"] == f"http://testserver/api/movies/{movie['id']}/stream"
    poster = await client.get(movie["coverImage"])
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
    assert poster.content[:3] == b"\xff\xd8\xff"


async def test_the_stream_serves_exact_bytes_for_first_middle_and_last_ranges(client, upload, clip):
    data = clip.read_bytes()
    movie = (await upload(client)).json()["data"]
    url = f"/api/movies/{movie['id']}/stream"

    whole = await client.get(url)
    first = await client.get(url, headers={"Range": "bytes=0-99"})
    middle = await client.get(url, headers={"Range": "bytes=1000-2999"})
    last = await client.get(url, headers={"Range": "bytes=-500"})
    beyond = await client.get(url, headers={"Range": f"bytes={len(data)}-"})

    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "video/mp4"
    assert (first.status_code, first.content) == (206, data[:100])
    assert first.headers["content-range"] == f"bytes 0-99/{len(data)}"
    assert (middle.status_code, middle.content) == (206, data[1000:3000])
    assert (last.status_code, last.content) == (206, data[-500:])
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"


async def test_an_external_movie_streams_by_redirect(client, new_movie):
    movie = await new_movie(client, videoUrl="https://cdn.example.com/x.webm")

    resp = await client.get(f"/api/movies/{movie['id']}/stream")

    assert resp.status_code == 302
    assert resp.headers["location"] == "https://cdn.example.com/x.webm"


async def test_streaming_an_unknown_movie_is_404(client, check_error):
    check_error(await client.get(f"/api/movies/{uuid.uuid4().hex}/stream"), 404, "Movie not found")


async def test_a_file_that_is_not_a_video_is_refused(client, upload, check_error):
    check_error(await upload(client, data=b"<html>" * 1000), 400, code="unsupported_video_format")
    check_error(await upload(client, filename="clip.exe"), 400, code="unsupported_video_format")


async def test_a_damaged_video_is_refused_with_its_reason_and_leaves_no_file(
    client, app, tokens, clip, check_error
):
    damaged = clip.read_bytes()[:2000]  # the header survives, the index (moov) does not
    png = io.BytesIO()
    Image.new("RGB", (40, 60), "teal").save(png, "PNG")

    resp = await client.post(
        "/api/movies/upload",
        headers=tokens("admin"),
        data={"title": "Rota"},
        files={"video": ("rota.mp4", damaged), "cover": ("c.png", png.getvalue())},
    )

    body = check_error(resp, 400, code="unreadable_video")
    assert body["details"]["reason"]
    root = app.state.movies.media.store.root
    assert [p for p in root.rglob("*") if p.is_file()] == []
    assert (await client.get("/api/movies", params={"search": "Rota"})).json()["total"] == 0


async def test_an_upload_over_the_limit_gets_413_json(app_factory, upload, check_error):
    from streamia_kit.testing import serve_app

    async with serve_app(app_factory(max_upload_bytes=10_000)) as client:
        body = check_error(await upload(client), 413, code="payload_too_large")
        assert body["message"] == "Video exceeds the maximum size of 9.8 KiB"
        assert (await client.get("/api/movies")).json()["total"] == 0


async def test_an_upload_without_a_title_takes_the_file_name_and_without_a_video_is_refused(
    client, tokens, clip, check_error
):
    no_title = await client.post(
        "/api/movies/upload",
        headers=tokens("admin"),
        data={"description": "x", "title": "  "},
        files={"video": ("Big Buck Bunny.mp4", clip.read_bytes(), "video/mp4")},
    )
    no_video = await client.post(
        "/api/movies/upload",
        headers=tokens("admin"),
        data={"title": "x"},
        files={"other": ("a.txt", b"x")},
    )

    assert no_title.status_code == 201, no_title.text
    assert no_title.json()["data"]["title"] == "Big Buck Bunny"
    assert "video" in check_error(no_video, 400, "Validation error")["details"]["fieldErrors"]
    assert (await client.get("/api/movies")).json()["total"] == 1


@pytest.mark.parametrize(
    "fields,filename",
    [
        ({"title": "Nu\x00l"}, "clip.mp4"),
        ({"title": "t", "description": "d\x00"}, "clip.mp4"),
        ({"title": "t", "category": "\x00"}, "clip.mp4"),
        ({}, "Nu\x00l.mp4"),
    ],
)
async def test_a_nul_in_an_uploads_text_is_a_400_and_stores_nothing(
    client, app, tokens, clip, check_error, fields, filename
):
    # By hand: httpx would percent-encode the NUL a fuzzer sends as it is.
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="{filename}"'
        "\r\nContent-Type: video/mp4\r\n\r\n".encode()
        + clip.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )

    resp = await client.post(
        "/api/movies/upload",
        headers={**tokens("admin"), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=b"".join(parts),
    )

    check_error(resp, 400, "Validation error")
    root = app.state.movies.media.store.root
    assert [p for p in root.rglob("*") if p.is_file()] == []
    assert (await client.get("/api/movies")).json()["total"] == 0


SRT_LATIN1 = "1\r\n00:00:01,000 --> 00:00:02,500\r\n¡Acción!\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\nSeñor\r\n".encode(
    "latin-1"
)


async def test_a_latin1_srt_is_served_as_utf8_webvtt(client, tokens, new_movie):
    movie = await new_movie(client)

    resp = await client.post(
        f"/api/movies/{movie['id']}/subtitles",
        headers=tokens("admin"),
        data={"language": "es"},
        files={"subtitle": ("es.srt", SRT_LATIN1)},
    )

    assert resp.status_code == 200, resp.text
    (track,) = resp.json()["data"]
    assert set(track) == {"id", "_id", "language", "label", "url"}
    assert (track["language"], track["label"]) == ("es", "Español")
    served = await client.get(track["url"])
    assert served.headers["content-type"] == "text/vtt; charset=utf-8"
    text = served.content.decode("utf-8")
    assert text.startswith("WEBVTT\n")
    assert "00:00:01.000 --> 00:00:02.500\n¡Acción!" in text


async def test_a_second_track_in_the_same_language_replaces_the_first(
    client, tokens, new_movie, app
):
    movie = await new_movie(client)
    url = f"/api/movies/{movie['id']}/subtitles"
    first = await client.post(
        url,
        headers=tokens("admin"),
        data={"language": "en", "label": "Old"},
        files={"subtitle": ("a.vtt", b"WEBVTT\n\n00:01.000 --> 00:02.000\nold\n")},
    )
    await client.post(
        url,
        headers=tokens("admin"),
        data={"language": "es"},
        files={"subtitle": ("b.srt", SRT_LATIN1)},
    )

    resp = await client.post(
        url,
        headers=tokens("admin"),
        data={"language": "EN", "label": "English"},
        files={"subtitle": ("c.vtt", b"WEBVTT\n\n00:01.000 --> 00:02.000\nnew\n")},
    )

    tracks = resp.json()["data"]
    assert [(t["language"], t["label"]) for t in tracks] == [("en", "English"), ("es", "Español")]
    assert "new" in (await client.get(tracks[0]["url"])).text
    old_url = first.json()["data"][0]["url"]
    assert (await client.get(old_url)).status_code == 404
    listing = (await client.get(url)).json()
    assert listing == {"movie": movie["title"], "subtitles": tracks}
    assert (await client.get(f"/api/movies/{movie['id']}")).json()["data"]["subtitles"] == tracks


@pytest.mark.parametrize(
    "filename,content,language",
    [
        ("bad.srt", b"1\nnot a timing\nhello\n", "es"),
        ("bad.vtt", b"NOT WEBVTT\n\n00:01.000 --> 00:02.000\nx\n", "es"),
        ("sub.txt", b"1\n00:00:01,000 --> 00:00:02,000\nok\n", "es"),
        ("ok.srt", b"1\n00:00:01,000 --> 00:00:02,000\nok\n", "not a language!"),
    ],
)
async def test_a_malformed_subtitle_upload_is_a_400(
    client, tokens, new_movie, check_error, filename, content, language
):
    movie = await new_movie(client)

    resp = await client.post(
        f"/api/movies/{movie['id']}/subtitles",
        headers=tokens("admin"),
        data={"language": language},
        files={"subtitle": (filename, content)},
    )

    check_error(resp, 400)
    assert (await client.get(f"/api/movies/{movie['id']}/subtitles")).json()["subtitles"] == []


async def test_subtitles_of_an_unknown_movie_are_404(client, tokens, check_error):
    url = f"/api/movies/{uuid.uuid4().hex}/subtitles"
    check_error(await client.get(url), 404, "Movie not found")
    check_error(
        await client.post(
            url,
            headers=tokens("admin"),
            data={"language": "es"},
            files={"subtitle": ("a.srt", SRT_LATIN1)},
        ),
        404,
        "Movie not found",
    )


async def test_deleting_a_movie_removes_its_media_through_the_saga(client, app, tokens, upload):
    movie = (await upload(client)).json()["data"]
    await client.post(
        f"/api/movies/{movie['id']}/subtitles",
        headers=tokens("admin"),
        data={"language": "es"},
        files={"subtitle": ("es.srt", SRT_LATIN1)},
    )
    media_root = app.state.movies.media.store.root
    files = [p for p in media_root.rglob("*") if p.is_file() and movie["id"] in str(p)]
    assert len(files) == 3  # video, poster, subtitle

    await client.delete(f"/api/movies/{movie['id']}", headers=tokens("admin"))

    await wait_for(lambda: not any(p.exists() for p in files), timeout=15, message="media deleted")


class FlakyStore(LocalMediaStore):
    """A local store whose deletes fail a few times, like a CDN outage."""

    failures = 2
    attempts = 0

    async def delete(self, key, kind):
        type(self).attempts += 1
        if type(self).attempts <= self.failures:
            raise MediaStoreError("CDN unavailable")
        await super().delete(key, kind)


async def test_media_deletion_is_retried_until_the_store_recovers(
    app_factory, tmp_path, tokens, upload
):
    from streamia_kit.testing import serve_app

    FlakyStore.attempts = 0
    store = FlakyStore(tmp_path / "flaky-media")
    async with serve_app(app_factory(store=store)) as client:
        movie = (await upload(client)).json()["data"]
        video = store.root / "videos" / f"{movie['id']}.mp4"
        assert video.exists()

        resp = await client.delete(f"/api/movies/{movie['id']}", headers=tokens("admin"))

        assert resp.status_code == 200
        await wait_for(
            lambda: not video.exists(), timeout=20, message="video deleted after retries"
        )
        assert FlakyStore.attempts >= 3
