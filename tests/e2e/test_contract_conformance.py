"""schemathesis over the gateway's merged OpenAPI against the running platform: no server
error and no response the document does not describe (status, content type, schema)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


@pytest.mark.timeout(360)
async def test_every_answer_of_the_api_is_one_its_openapi_document_describes(
    platform, client, harness, tmp_path: Path
) -> None:
    if platform.distributed:
        pytest.skip("the contract is the same on both stacks: checked once, on the embedded one")
    # An admin of its own: the fuzzer's valid `PUT /api/users/me` bodies rewrite the account
    # it runs as (its email included), which must not be the admin the other tests log in as.
    email = f"fuzz-admin-{uuid.uuid4().hex[:10]}@example.com"
    await asyncio.to_thread(
        platform.cli, "users", "create-admin", email, "--password", harness.PASSWORD
    )
    token = await platform.login(client, email, harness.PASSWORD)
    st = Path(sys.executable).with_name("st")
    # The platform runs in its own processes: waiting in a thread keeps this loop free.
    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(st),
            "run",
            f"{platform.gateway}/openapi.json",
            "--url",
            platform.gateway,
            "--checks",
            CHECKS,
            "--phases",
            "examples,fuzzing",
            "--max-examples",
            "4",
            "--generation-deterministic",
            "--request-timeout",
            "10",
            "--header",
            f"Authorization: Bearer {token}",
            "--no-color",
            # Logging out would revoke the token the rest of the run uses.
            "--exclude-path",
            "/api/users/logout",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
