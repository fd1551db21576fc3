"""Oversized bodies get a clear 413 JSON from the gateway; uploads still stream through."""

from __future__ import annotations

import aiohttp


async def test_a_json_body_over_the_limit_is_refused_before_reaching_the_service(
    start_gateway, upstream, http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway(max_json_body_bytes=1024)
    async with http.put(
        gateway.url + "/api/users/me",
        data=b"{" + b" " * 4096 + b"}",
        headers={"Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 413
        body = await resp.json()
    assert body["code"] == "payload_too_large" and body["error"] == body["message"]
    async with http.put(
        gateway.url + "/api/users/me", data=b"{}", headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status != 413


async def test_upload_routes_use_the_upload_limit(
    start_gateway, upstream, http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway(max_json_body_bytes=1024, max_upload_bytes=64 * 1024)
    async with http.post(
        gateway.url + "/api/movies/upload", data=b"x" * 8192, headers={"Content-Type": "video/mp4"}
    ) as resp:
        assert resp.status != 413
    async with http.post(
        gateway.url + "/api/movies/abc/subtitles",
        data=b"x" * 100_000,
        headers={"Content-Type": "text/vtt"},
    ) as resp:
        assert resp.status == 413
        assert (await resp.json())["code"] == "payload_too_large"


async def test_a_client_sending_a_megabyte_gets_the_413_answer_not_a_broken_pipe(
    start_gateway, upstream
) -> None:
    import httpx

    gateway = await start_gateway()
    async with httpx.AsyncClient() as client:
        for _ in range(5):
            resp = await client.put(
                gateway.url + "/api/users/me",
                content=b"a" * (1024 * 1024),
                headers={"Content-Type": "application/json"},
            )
            assert resp.status_code == 413
            assert resp.json()["code"] == "payload_too_large"
