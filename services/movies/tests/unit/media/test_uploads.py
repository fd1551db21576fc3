import uuid

import httpx
import pytest
from fastapi import FastAPI, Request

from streamia_kit.errors import install_error_handlers
from streamia_movies.media.uploads import FileRule, receive_multipart, video_rule

MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
MKV_HEAD = b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x88matroska"
WEBM_HEAD = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm"
AVI_HEAD = b"RIFF\x10\x00\x00\x00AVI LIST"
MOV_HEAD = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  "


@pytest.fixture
def staging(tmp_path):
    return tmp_path / "staging"


@pytest.fixture
async def client(staging):
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/upload")
    async def upload(request: Request):
        limit = int(request.query_params.get("limit", 10 * 1024 * 1024))
        form = await receive_multipart(
            request, staging, {"video": video_rule(limit), "subtitle": FileRule(1000)}
        )
        try:
            return {
                "fields": form.fields,
                "files": {
                    name: {
                        "filename": f.filename,
                        "size": f.size,
                        "data_ok": f.path.read_bytes() == request.app.state.expected.get(name),
                    }
                    for name, f in form.files.items()
                },
            }
        finally:
            form.cleanup()

    app.state.expected = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        c.app = app
        yield c


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]], boundary: str):
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, (filename, data) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


async def _chunked(body: bytes, size: int = 7000):
    for i in range(0, len(body), size):
        yield body[i : i + size]


async def test_fields_and_the_video_arrive_intact_whatever_their_order(client, staging):
    data = MP4_HEAD + bytes(range(256)) * 4000
    client.app.state.expected = {"video": data}
    boundary = uuid.uuid4().hex
    body = _multipart({}, {"video": ("film.mp4", data)}, boundary)[: -len(f"--{boundary}--\r\n")]
    body += _multipart({"title": "Acción", "description": "d", "category": "drama"}, {}, boundary)

    r = await client.post(
        "/upload",
        content=_chunked(body),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert r.status_code == 200, r.text
    assert r.json()["fields"] == {"title": "Acción", "description": "d", "category": "drama"}
    assert r.json()["files"]["video"]["size"] == len(data)
    assert r.json()["files"]["video"]["data_ok"]
    assert r.json()["files"]["video"]["filename"] == "film.mp4"


@pytest.mark.parametrize(
    "name,head",
    [
        ("a.mkv", MKV_HEAD),
        ("a.webm", WEBM_HEAD),
        ("a.avi", AVI_HEAD),
        ("a.mov", MOV_HEAD),
        ("noext", MP4_HEAD),
    ],
)
async def test_each_supported_container_is_accepted(client, name, head):
    r = await client.post("/upload", files={"video": (name, head + b"\x00" * 5000)})

    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "name,data",
    [
        ("film.mp4", b"<html>definitely not a video</html>" * 200),
        ("film.mp4", b"tiny"),
        ("film.exe", MP4_HEAD + b"\x00" * 5000),
        ("film.txt", MP4_HEAD),
    ],
)
async def test_a_file_that_is_not_a_supported_video_is_refused_by_content_or_name(
    client, staging, name, data
):
    r = await client.post("/upload", files={"video": (name, data)})

    assert r.status_code == 400
    assert r.json()["code"] == "unsupported_video_format"
    assert list(staging.iterdir()) == []


async def test_a_declared_body_over_the_limit_gets_413_before_it_is_read(client, staging):
    body_read = False

    async def body():
        nonlocal body_read
        body_read = True
        yield b"x"

    r = await client.post(
        "/upload?limit=1000",
        content=body(),
        headers={
            "Content-Type": "multipart/form-data; boundary=abc",
            "Content-Length": str(5 * 1024 * 1024),
        },
    )

    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"
    assert (
        r.json()["error"] == r.json()["message"] == "Video exceeds the maximum size of 1000 bytes"
    )
    assert not body_read


async def test_a_chunked_video_over_the_limit_gets_413_and_leaves_nothing_on_disk(client, staging):
    limit = 64 * 1024
    boundary = uuid.uuid4().hex
    body = _multipart(
        {"title": "t"}, {"video": ("a.mp4", MP4_HEAD + b"\x00" * (limit * 2))}, boundary
    )

    r = await client.post(
        f"/upload?limit={limit}",
        content=_chunked(body),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"
    assert list(staging.iterdir()) == []


async def test_a_video_exactly_at_the_limit_is_accepted(client):
    limit = 50_000
    data = MP4_HEAD + b"\x00" * (limit - len(MP4_HEAD))

    r = await client.post(f"/upload?limit={limit}", files={"video": ("a.mp4", data)})

    assert r.status_code == 200
    assert r.json()["files"]["video"]["size"] == limit


async def test_a_body_that_is_not_multipart_is_a_400(client):
    r = await client.post("/upload", json={"title": "x"})

    assert r.status_code == 400
    assert r.json()["code"] == "invalid_upload"


async def test_a_truncated_body_is_a_400_and_leaves_nothing_on_disk(client, staging):
    boundary = uuid.uuid4().hex
    body = _multipart({}, {"video": ("a.mp4", MP4_HEAD + b"\x00" * 10000)}, boundary)[:-200]

    r = await client.post(
        "/upload",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert r.status_code == 400
    assert list(staging.iterdir()) == []


async def test_two_videos_in_one_request_are_refused(client, staging):
    boundary = uuid.uuid4().hex
    one = _multipart({}, {"video": ("a.mp4", MP4_HEAD)}, boundary)[: -len(f"--{boundary}--\r\n")]

    r = await client.post(
        "/upload",
        content=one + one + f"--{boundary}--\r\n".encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert r.status_code == 400
    assert list(staging.iterdir()) == []


async def test_an_oversized_text_field_is_refused(client):
    r = await client.post(
        "/upload", data={"description": "x" * 100_000}, files={"video": ("a.mp4", MP4_HEAD)}
    )

    assert r.status_code == 400


async def test_files_in_unexpected_fields_are_skipped(client, staging):
    r = await client.post(
        "/upload", files={"video": ("a.mp4", MP4_HEAD), "other": ("x.bin", b"z" * 5000)}
    )

    assert r.status_code == 200
    assert set(r.json()["files"]) == {"video"}


async def test_field_names_and_filenames_beyond_latin_1_are_read_as_utf_8(client, staging):
    data = MP4_HEAD + b"\x00" * 5000
    client.app.state.expected = {"video": data}
    boundary = uuid.uuid4().hex
    body = _multipart(
        {"título 🎬": "sí", "\U000ff4f2": "{}"}, {"video": ("película 🎬.mp4", data)}, boundary
    )

    r = await client.post(
        "/upload",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert r.status_code == 200, r.text
    assert r.json()["fields"] == {"título 🎬": "sí", "\U000ff4f2": "{}"}
    assert r.json()["files"]["video"]["filename"] == "película 🎬.mp4"
    assert r.json()["files"]["video"]["data_ok"]
    assert list(staging.iterdir()) == []
