"""CloudinaryMediaStore against a local HTTP server standing in for Cloudinary's upload API."""

import hashlib
import io
import json
import random
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from python_multipart import parse_form

from streamia_movies.media.storage import CloudinaryConfig, CloudinaryMediaStore, MediaStoreError

API_KEY = "123456789012345"
API_SECRET = "s3cr3t-" + uuid.uuid4().hex
CLOUD = "demo-cloud"
UNSIGNED = {"file", "api_key", "signature", "resource_type", "cloud_name"}


class FakeCloudinary(ThreadingHTTPServer):
    """Checks every request's signature the way Cloudinary does and keeps what it received."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.uploads: dict[str, bytearray] = {}
        self.deleted: set[str] = set()
        self.lock = threading.Lock()


def _expected_signature(params: dict[str, str], algorithm: str) -> str:
    signed = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in UNSIGNED and v)
    return hashlib.new(algorithm, (signed + API_SECRET).encode()).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    server: FakeCloudinary

    def log_message(self, *args):  # keep test output quiet
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        params: dict[str, str] = {}
        file_bytes = bytearray()

        def on_field(f):
            params[f.field_name.decode()] = (f.value or b"").decode()

        def on_file(f):
            f.file_object.seek(0)
            file_bytes.extend(f.file_object.read())

        parse_form(
            {"Content-Type": self.headers["Content-Type"], "Content-Length": str(length)},
            io.BytesIO(body),
            on_field,
            on_file,
        )
        _, version, cloud, resource_type, action = self.path.split("/")
        algorithm = self.server.signature_algorithm
        record = {
            "path": self.path,
            "params": params,
            "bytes": len(file_bytes),
            "content_range": self.headers.get("Content-Range"),
            "upload_id": self.headers.get("X-Unique-Upload-Id"),
            "signature_ok": params.get("signature") == _expected_signature(params, algorithm)
            and params.get("api_key") == API_KEY,
        }
        with self.server.lock:
            self.server.requests.append(record)
        if version != "v1_1" or cloud != CLOUD:
            return self._reply(404, {"error": {"message": "unknown cloud"}})
        if not record["signature_ok"]:
            return self._reply(401, {"error": {"message": "Invalid Signature"}})
        if self.server.fail_next:
            self.server.fail_next -= 1
            return self._reply(500, {"error": {"message": "General Error"}})
        public_id = params["public_id"]
        if action == "upload":
            with self.server.lock:
                buf = self.server.uploads.setdefault(public_id, bytearray())
                if record["content_range"]:
                    start = int(record["content_range"].split()[1].split("-")[0])
                    del buf[start:]
                else:
                    buf.clear()
                buf.extend(file_bytes)
                total = len(buf)
            url = f"https://res.cloudinary.com/{CLOUD}/{resource_type}/upload/v1/{public_id}"
            return self._reply(
                200,
                {
                    "public_id": public_id,
                    "bytes": total,
                    "resource_type": resource_type,
                    "secure_url": url,
                },
            )
        if action == "destroy":
            known = public_id in self.server.uploads and public_id not in self.server.deleted
            self.server.deleted.add(public_id)
            return self._reply(200, {"result": "ok" if known else "not found"})
        return self._reply(404, {"error": {"message": "unknown action"}})


@pytest.fixture
def fake():
    server = FakeCloudinary()
    server.signature_algorithm = "sha1"
    server.fail_next = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _store(fake, tmp_path, secret=API_SECRET, extra="", chunk_size=5 * 1024 * 1024):
    host, port = fake.server_address
    url = f"cloudinary://{API_KEY}:{secret}@{CLOUD}?upload_prefix=http://{host}:{port}{extra}"
    return CloudinaryMediaStore(
        CloudinaryConfig.from_url(url),
        tmp_path / "staging",
        folder="streamia-test",
        chunk_size=chunk_size,
    )


def _staged(tmp_path, data: bytes, name="upload.mp4"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def test_a_video_is_uploaded_in_signed_chunks_and_reassembles_exactly(fake, tmp_path):
    store = _store(fake, tmp_path)
    data = random.randbytes(12 * 1024 * 1024 + 123)
    movie = uuid.uuid4().hex

    stored = await store.save_file(
        f"videos/{movie}.mp4", _staged(tmp_path, data), "video", "video/mp4"
    )

    public_id = f"streamia-test/videos/{movie}"
    assert [r["path"] for r in fake.requests] == [f"/v1_1/{CLOUD}/video/upload"] * 3
    assert all(r["signature_ok"] for r in fake.requests)
    assert [r["content_range"] for r in fake.requests] == [
        f"bytes 0-{5 * 2**20 - 1}/{len(data)}",
        f"bytes {5 * 2**20}-{10 * 2**20 - 1}/{len(data)}",
        f"bytes {10 * 2**20}-{len(data) - 1}/{len(data)}",
    ]
    assert len({r["upload_id"] for r in fake.requests}) == 1
    assert bytes(fake.uploads[public_id]) == data
    assert stored.provider == "cloudinary" and stored.size == len(data)
    assert stored.url == f"https://res.cloudinary.com/{CLOUD}/video/upload/v1/{public_id}"
    assert not (tmp_path / "upload.mp4").exists()


async def test_a_subtitle_is_uploaded_as_a_raw_file_keeping_its_extension(fake, tmp_path):
    store = _store(fake, tmp_path)

    async def chunks():
        yield b"WEBVTT\n\n00:01.000 --> 00:02.000\nhola\n"

    await store.save("subtitles/m1/es.vtt", chunks(), "subtitle", "text/vtt")

    (request,) = fake.requests
    assert request["path"] == f"/v1_1/{CLOUD}/raw/upload"
    assert request["params"]["public_id"] == "streamia-test/subtitles/m1/es.vtt"
    assert request["signature_ok"]
    assert list(store.staging_dir.iterdir()) == []


async def test_deleting_sends_a_signed_destroy_and_a_second_delete_still_succeeds(fake, tmp_path):
    store = _store(fake, tmp_path)
    await store.save_file(
        "posters/m1.jpg", _staged(tmp_path, b"\xff\xd8\xff" + b"j" * 100), "poster", "image/jpeg"
    )

    await store.delete("posters/m1.jpg", "poster")
    await store.delete("posters/m1.jpg", "poster")

    destroys = [r for r in fake.requests if r["path"].endswith("/destroy")]
    assert [r["path"] for r in destroys] == [f"/v1_1/{CLOUD}/image/destroy"] * 2
    assert all(
        r["signature_ok"] and r["params"]["public_id"] == "streamia-test/posters/m1"
        for r in destroys
    )
    assert "streamia-test/posters/m1" in fake.deleted


async def test_sha256_signatures_are_used_when_configured(fake, tmp_path):
    fake.signature_algorithm = "sha256"
    store = _store(fake, tmp_path, extra="&signature_algorithm=sha256")

    await store.save_file(
        "subtitles/m/en.vtt", _staged(tmp_path, b"WEBVTT\n"), "subtitle", "text/vtt"
    )

    assert fake.requests[0]["signature_ok"]
    assert len(fake.requests[0]["params"]["signature"]) == 64


async def test_a_wrong_secret_is_refused_and_surfaces_as_a_store_error(fake, tmp_path):
    store = _store(fake, tmp_path, secret="not-the-secret")

    with pytest.raises(MediaStoreError):
        await store.save_file("videos/x.mp4", _staged(tmp_path, b"v" * 10), "video", "video/mp4")

    assert fake.requests and not fake.requests[0]["signature_ok"]


async def test_a_cloudinary_outage_on_delete_raises_so_the_saga_retries(fake, tmp_path):
    store = _store(fake, tmp_path)
    fake.fail_next = 1

    with pytest.raises(MediaStoreError):
        await store.delete("videos/x.mp4", "video")
    await store.delete("videos/x.mp4", "video")  # the retry goes through


def test_the_cloudinary_url_is_parsed_without_touching_global_config():
    cfg = CloudinaryConfig.from_url("cloudinary://key:sec%40ret@my-cloud?upload_prefix=http://x")

    assert (cfg.cloud_name, cfg.api_key, cfg.api_secret) == ("my-cloud", "key", "sec@ret")
    assert cfg.sdk_options()["upload_prefix"] == "http://x"
    with pytest.raises(ValueError):
        CloudinaryConfig.from_url("https://key:secret@my-cloud")
