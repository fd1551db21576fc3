import os
import uuid

import pytest

from streamia_movies.media.storage import LocalMediaStore


async def _chunks(*parts: bytes):
    for part in parts:
        yield part


@pytest.fixture
def store(tmp_path):
    return LocalMediaStore(tmp_path / "media")


async def test_a_saved_stream_can_be_opened_with_its_bytes_and_size(store):
    key = f"videos/{uuid.uuid4().hex}.mp4"

    stored = await store.save(key, _chunks(b"a" * 3_000_000, b"b" * 10), "video", "video/mp4")
    local = await store.open(key)

    assert stored.size == 3_000_010 and stored.provider == "local"
    assert local is not None and local.stat.st_size == 3_000_010
    assert local.path.read_bytes() == b"a" * 3_000_000 + b"b" * 10


async def test_saving_leaves_no_temp_files_behind(store):
    await store.save("subtitles/m/es.vtt", _chunks(b"WEBVTT\n"), "subtitle", "text/vtt")

    leftovers = [p for p in store.root.rglob("*") if p.is_file() and p.name != "es.vtt"]
    assert leftovers == []


async def test_a_failed_stream_leaves_neither_the_file_nor_a_temp_file(store):
    async def broken():
        yield b"x" * 10
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        await store.save("videos/broken.mp4", broken(), "video", "video/mp4")

    assert await store.open("videos/broken.mp4") is None
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


async def test_save_file_moves_a_staged_file_into_place(store):
    store.staging_dir.mkdir(parents=True)
    staged = store.staging_dir / "upload"
    staged.write_bytes(b"video-bytes")

    stored = await store.save_file("videos/m1.mp4", staged, "video", "video/mp4")

    assert not staged.exists()
    assert (await store.open("videos/m1.mp4")).path.read_bytes() == b"video-bytes"
    assert stored.url == "/api/movies/media/videos/m1.mp4"


async def test_overwriting_a_key_replaces_the_file(store):
    await store.save("subtitles/m/es.vtt", _chunks(b"old"), "subtitle", "text/vtt")
    await store.save("subtitles/m/es.vtt", _chunks(b"new"), "subtitle", "text/vtt")

    assert (await store.open("subtitles/m/es.vtt")).path.read_bytes() == b"new"


async def test_deleting_removes_the_file_and_deleting_again_succeeds(store):
    await store.save("posters/p.jpg", _chunks(b"jpeg"), "poster", "image/jpeg")

    await store.delete("posters/p.jpg", "poster")
    await store.delete("posters/p.jpg", "poster")

    assert await store.open("posters/p.jpg") is None
    assert os.listdir(store.root) in ([], [".staging"])


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "/abs/path", "a/../../b", "", "a//b", "a\\b", "."]
)
async def test_keys_cannot_escape_the_media_root(store, key):
    with pytest.raises(ValueError):
        await store.save(key, _chunks(b"x"), "video", "video/mp4")
    assert await store.open(key) is None


async def test_a_symlink_out_of_the_root_is_not_served(store, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (store.root / "videos").mkdir(parents=True)
    (store.root / "videos" / "link.mp4").symlink_to(secret)

    assert await store.open("videos/link.mp4") is None
