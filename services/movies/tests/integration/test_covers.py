"""Cover images: uploaded with the video or later, sniffed, re-encoded, never served as sent."""

import io
import uuid

from PIL import Image

from streamia_kit.testing import serve_app, wait_for


def _png(size=(400, 600), color=(200, 30, 60, 255), mode="RGBA", trailer=b"") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, "PNG")
    return out.getvalue() + trailer


def _decoded(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


async def _put_cover(client, tokens, movie_id, content, filename="cover.png", role="admin"):
    return await client.put(
        f"/api/movies/{movie_id}/cover",
        headers=tokens(role),
        files={"cover": (filename, content, "image/png")},
    )


async def test_a_cover_sent_with_the_upload_is_the_poster_re_encoded_as_jpeg(client, tokens, clip):
    hostile = _png(trailer=b"<script>alert(1)</script>")

    resp = await client.post(
        "/api/movies/upload",
        headers=tokens("admin"),
        data={"title": "Con portada"},
        files={"video": ("clip.mp4", clip.read_bytes()), "cover": ("c.png", hostile)},
    )

    assert resp.status_code == 201, resp.text
    poster = await client.get(resp.json()["data"]["coverImage"])
    assert poster.headers["content-type"] == "image/jpeg"
    assert b"<script>" not in poster.content
    image = _decoded(poster.content)
    assert (image.format, image.size) == ("JPEG", (400, 600))
    red, green, blue = image.getpixel((200, 300))
    assert abs(red - 200) < 10 and green < 45 and blue < 75


async def test_putting_a_cover_replaces_the_poster_and_deletes_the_old_file(
    client, app, tokens, upload
):
    movie = (await upload(client)).json()["data"]
    root = app.state.movies.media.store.root
    old = [p for p in (root / "posters").iterdir() if movie["id"] in p.name]

    resp = await _put_cover(client, tokens, movie["id"], _png(size=(3000, 3000)))

    assert resp.status_code == 200, resp.text
    updated = resp.json()["data"]
    assert updated["coverImage"] != movie["coverImage"]
    image = _decoded((await client.get(updated["coverImage"])).content)
    assert image.size == (1280, 1280)  # bounded by the stored cover's box
    again = (await client.get(f"/api/movies/{movie['id']}")).json()["data"]
    assert again["coverImage"] == updated["coverImage"]
    assert len(old) == 1 and not old[0].exists()


async def test_an_external_movie_gets_a_stored_cover_that_goes_with_the_movie(
    client, app, tokens, new_movie
):
    movie = await new_movie(client, coverImage="https://cdn.example.com/c.jpg")

    resp = await _put_cover(client, tokens, movie["id"], _png(mode="RGB", color=(0, 90, 0)))

    assert resp.status_code == 200, resp.text
    assert "/api/movies/media/posters/" in resp.json()["data"]["coverImage"]
    root = app.state.movies.media.store.root
    stored = [p for p in (root / "posters").iterdir() if movie["id"] in p.name]
    assert len(stored) == 1
    await client.delete(f"/api/movies/{movie['id']}", headers=tokens("admin"))
    await wait_for(lambda: not stored[0].exists(), timeout=15, message="cover deleted")


async def test_a_cover_given_as_a_url_keeps_working(client, tokens, new_movie):
    movie = await new_movie(client)

    resp = await client.put(
        f"/api/movies/{movie['id']}",
        headers=tokens("admin"),
        json={"coverImage": "https://cdn.example.com/new.jpg"},
    )

    assert resp.json()["data"]["coverImage"] == "https://cdn.example.com/new.jpg"


async def test_a_file_that_is_not_an_image_is_refused(client, tokens, new_movie, check_error):
    movie = await new_movie(client)

    resp = await _put_cover(client, tokens, movie["id"], b"GIF89a" + b"\x00" * 100, "c.gif")

    check_error(resp, 400, code="unsupported_image_format")


async def test_a_corrupt_image_is_refused_and_nothing_is_stored(
    client, app, tokens, new_movie, check_error
):
    movie = await new_movie(client)
    broken = _png()[:60]  # a PNG header and the start of its first chunk

    resp = await _put_cover(client, tokens, movie["id"], broken)

    check_error(resp, 400, code="unreadable_image")
    posters = app.state.movies.media.store.root / "posters"
    assert not posters.exists() or not any(movie["id"] in p.name for p in posters.iterdir())
    after = (await client.get(f"/api/movies/{movie['id']}")).json()["data"]
    assert after["coverImage"] == movie["coverImage"]


async def test_a_decompression_bomb_is_refused_before_it_is_decoded(
    client, tokens, new_movie, check_error
):
    movie = await new_movie(client)
    bomb = _png(size=(10_000, 5_000), mode="1", color=0)  # 50 MP in a few KB

    body = check_error(await _put_cover(client, tokens, movie["id"], bomb), 400)

    assert body["code"] == "unreadable_image" and "too large" in body["message"]


async def test_a_cover_over_the_size_limit_is_refused(app_factory, tokens, check_error):
    async with serve_app(app_factory(max_cover_bytes=10_000)) as client:
        resp = await _put_cover(client, tokens, uuid.uuid4().hex, _png(mode="RGB") * 20)

        check_error(resp, 413, code="payload_too_large")


async def test_a_cover_needs_an_admin_a_file_and_a_known_movie(
    client, tokens, new_movie, check_error
):
    movie = await new_movie(client)
    url = f"/api/movies/{movie['id']}/cover"

    check_error(await _put_cover(client, tokens, movie["id"], _png(), role="user"), 403)
    missing = await client.put(url, headers=tokens("admin"), files={"other": ("x", b"x")})
    check_error(missing, 400)
    unknown = await _put_cover(client, tokens, uuid.uuid4().hex, _png())
    check_error(unknown, 404, "Movie not found")
