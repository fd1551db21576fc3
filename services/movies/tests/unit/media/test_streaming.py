import os
import random

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from streamia_movies.media.formats import content_type_for
from streamia_movies.media.streaming import IGNORE, MediaFileResponse, parse_byte_ranges

SIZE = 300_000


@pytest.fixture
def video(tmp_path):
    data = random.randbytes(SIZE)
    path = tmp_path / "film.bin"
    path.write_bytes(data)
    return path, data


@pytest.fixture
async def client(video):
    path, _ = video

    async def stream(request: Request):
        fmt = request.query_params.get("format", "mp4")
        return MediaFileResponse(path, os.stat(path), content_type_for(fmt))

    app = Starlette(routes=[Route("/stream", stream, methods=["GET", "HEAD"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        yield c


async def test_a_plain_get_returns_the_whole_file_and_advertises_ranges(client, video):
    r = await client.get("/stream")

    assert r.status_code == 200
    assert r.content == video[1]
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-length"] == str(SIZE)
    assert r.headers["etag"] and r.headers["last-modified"]


async def test_the_first_bytes_come_back_as_206_with_content_range(client, video):
    r = await client.get("/stream", headers={"Range": "bytes=0-1023"})

    assert r.status_code == 206
    assert r.content == video[1][:1024]
    assert r.headers["content-range"] == f"bytes 0-1023/{SIZE}"
    assert r.headers["content-length"] == "1024"


async def test_a_middle_slice_is_byte_for_byte_correct(client, video):
    r = await client.get("/stream", headers={"Range": "bytes=123456-200000"})

    assert r.status_code == 206
    assert r.content == video[1][123456:200001]
    assert r.headers["content-range"] == f"bytes 123456-200000/{SIZE}"


async def test_a_suffix_range_returns_the_last_bytes(client, video):
    r = await client.get("/stream", headers={"Range": "bytes=-500"})

    assert r.status_code == 206
    assert r.content == video[1][-500:]
    assert r.headers["content-range"] == f"bytes {SIZE - 500}-{SIZE - 1}/{SIZE}"


async def test_a_suffix_longer_than_the_file_returns_all_of_it(client, video):
    r = await client.get("/stream", headers={"Range": f"bytes=-{SIZE * 2}"})

    assert r.status_code == 206
    assert r.content == video[1]


async def test_an_open_ended_range_runs_to_the_end(client, video):
    r = await client.get("/stream", headers={"Range": f"bytes={SIZE - 10}-"})

    assert r.status_code == 206
    assert r.content == video[1][-10:]
    assert r.headers["content-range"] == f"bytes {SIZE - 10}-{SIZE - 1}/{SIZE}"


async def test_a_range_past_the_end_is_clamped(client, video):
    r = await client.get("/stream", headers={"Range": f"bytes=299990-{SIZE * 5}"})

    assert r.status_code == 206
    assert r.content == video[1][299990:]


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}", "bytes=-0"])
async def test_an_unsatisfiable_range_gets_416_with_the_size(client, header):
    r = await client.get("/stream", headers={"Range": header})

    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{SIZE}"
    assert r.json()["code"] == "range_not_satisfiable"


@pytest.mark.parametrize("header", ["items=0-5", "bytes=5-1", "bytes=abc", "bytes=", "bytes=1-2-3"])
async def test_a_range_header_that_is_not_understood_is_ignored(client, video, header):
    r = await client.get("/stream", headers={"Range": header})

    assert r.status_code == 200
    assert r.content == video[1]


async def test_several_ranges_come_back_as_multipart_byteranges(client, video):
    r = await client.get("/stream", headers={"Range": f"bytes=0-9,{SIZE * 3}-,100-109"})

    assert r.status_code == 206
    assert r.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert video[1][0:10] in r.content and video[1][100:110] in r.content
    assert f"Content-Range: bytes 100-109/{SIZE}".encode() in r.content


async def test_if_range_with_the_current_etag_honours_the_range(client, video):
    etag = (await client.head("/stream")).headers["etag"]

    r = await client.get("/stream", headers={"Range": "bytes=0-9", "If-Range": etag})

    assert r.status_code == 206
    assert r.content == video[1][:10]


async def test_if_range_with_the_last_modified_date_honours_the_range(client, video):
    last_modified = (await client.head("/stream")).headers["last-modified"]

    r = await client.get("/stream", headers={"Range": "bytes=0-9", "If-Range": last_modified})

    assert r.status_code == 206


@pytest.mark.parametrize("validator", ['"stale-etag"', 'W/"weak"', "Tue, 01 Jan 2002 00:00:00 GMT"])
async def test_if_range_with_a_stale_validator_sends_the_whole_file(client, video, validator):
    r = await client.get("/stream", headers={"Range": "bytes=0-9", "If-Range": validator})

    assert r.status_code == 200
    assert r.content == video[1]


async def test_a_stale_if_range_wins_over_an_unsatisfiable_range(client, video):
    r = await client.get("/stream", headers={"Range": f"bytes={SIZE}-", "If-Range": '"old"'})

    assert r.status_code == 200


async def test_head_reports_the_range_without_a_body(client):
    r = await client.head("/stream", headers={"Range": "bytes=10-19"})

    assert r.status_code == 206
    assert r.headers["content-length"] == "10"
    assert r.content == b""


@pytest.mark.parametrize(
    "fmt,media_type",
    [
        ("mp4", "video/mp4"),
        ("webm", "video/webm"),
        ("mkv", "video/x-matroska"),
        ("mov", "video/quicktime"),
        ("avi", "video/x-msvideo"),
    ],
)
async def test_each_container_is_served_with_its_media_type(client, fmt, media_type):
    r = await client.get(f"/stream?format={fmt}", headers={"Range": "bytes=0-0"})

    assert r.headers["content-type"] == media_type


def test_parse_byte_ranges_covers_the_grammar():
    assert parse_byte_ranges("bytes=0-0", 10) == [(0, 0)]
    assert parse_byte_ranges("BYTES = 2-", 10) == [(2, 9)]
    assert parse_byte_ranges("bytes= -3", 10) == [(7, 9)]
    assert parse_byte_ranges("bytes=0-1, 4-5", 10) == [(0, 1), (4, 5)]
    assert parse_byte_ranges("bytes=10-", 10) == []
    assert parse_byte_ranges("bytes=0-", 0) == []
    assert parse_byte_ranges("bytes=-5", 0) == []
    assert parse_byte_ranges("bytes=3-1", 10) == IGNORE
    assert parse_byte_ranges("bytes=+1-2", 10) == IGNORE
    assert parse_byte_ranges("none", 10) == IGNORE
