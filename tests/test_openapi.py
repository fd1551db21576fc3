"""docs/openapi.json is what the gateway's `/openapi.json` serves, and it tells the truth."""

from __future__ import annotations

import json
from pathlib import Path

from streamia import platform

COMMITTED = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


def test_the_committed_openapi_document_is_the_generated_one():
    assert COMMITTED.read_text() == platform.openapi_json(), "run `.venv/bin/streamia openapi`"


def test_422_is_only_a_reused_idempotency_key_and_every_api_input_documents_the_400_body():
    document = json.loads(COMMITTED.read_text())
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            if "422" in responses:  # never FastAPI's validation 422: that is a 400 here
                headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
                assert "Idempotency-Key" in headers, (method, path)
                assert "Idempotency-Key" in responses["422"]["description"], (method, path)
            takes_input = operation.get("parameters") or operation.get("requestBody")
            if takes_input:
                schema = responses["400"]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path)


def test_uploads_document_their_multipart_bodies():
    paths = json.loads(COMMITTED.read_text())["paths"]
    for path, field in (
        ("/api/movies/upload", "video"),
        ("/api/movies/{movie_id}/subtitles", "subtitle"),
    ):
        body = paths[path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert body["properties"][field] == {"type": "string", "format": "binary"}, path


def test_every_api_write_documents_the_idempotency_key():
    paths = json.loads(COMMITTED.read_text())["paths"]
    writes = [
        (method, path, operation)
        for path, item in paths.items()
        if path.startswith("/api/")
        for method, operation in item.items()
        if method in ("post", "put", "patch", "delete")
    ]
    assert writes
    for method, path, operation in writes:
        names = [p["name"] for p in operation.get("parameters", [])]
        assert "Idempotency-Key" in names, (method, path)
        assert {"409", "422", "504"} <= set(operation["responses"]), (method, path)
