"""docs/openapi.json is what the gateway's `/openapi.json` serves, and it tells the truth."""

from __future__ import annotations

import json
from pathlib import Path

from streamia import platform

COMMITTED = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


def test_the_committed_openapi_document_is_the_generated_one():
    assert COMMITTED.read_text() == platform.openapi_json(), "run `.venv/bin/streamia openapi`"


def test_no_operation_documents_422_and_every_api_input_documents_the_400_error_body():
    document = json.loads(COMMITTED.read_text())
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
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
