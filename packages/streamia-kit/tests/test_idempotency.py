"""IdempotencyMiddleware on both stores (SQLite embedded, Redis distributed): a duplicate in
flight is 409, an answer that says "not done" (5xx) is not kept, and a store that is down
or hanging never fails nor stalls the write."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

from streamia_kit import idempotency
from streamia_kit.deadlines import DEADLINE_HEADER, DeadlineMiddleware
from streamia_kit.idempotency import (
    IDEMPOTENCY_HEADER,
    REPLAYED_HEADER,
    IdempotencyMiddleware,
    IdempotencyStore,
    RedisIdempotencyStore,
    SqliteIdempotencyStore,
)
from streamia_kit.testing import (
    REDIS,
    Stack,
    TcpProxy,
    cancel_at_each_step,
    serve_app,
    stray_tasks,
    wait_for,
)


class Work:
    """What the endpoint did: one entry per run, and a gate the test opens."""

    def __init__(self) -> None:
        self.runs: list[bytes] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_next = False


def _app(store: IdempotencyStore, work: Work) -> FastAPI:
    app = FastAPI()
    service = SimpleNamespace(name="test", infra=SimpleNamespace(idempotency=store))
    app.add_middleware(IdempotencyMiddleware, service=service)
    app.add_middleware(DeadlineMiddleware, service="test", margin_seconds=0.0)  # as create_app

    @app.post("/things")
    async def create(request: Request) -> Any:
        body = await request.body()
        work.runs.append(body)
        await work.gate.wait()
        if work.fail_next:
            work.fail_next = False
            return JSONResponse({"error": "down"}, status_code=503)
        return JSONResponse({"n": len(work.runs)}, status_code=201)

    return app


@pytest.fixture
async def store(stack: Stack) -> Any:
    if not stack.distributed:
        sqlite = SqliteIdempotencyStore(stack.tmp / "idempotency.sqlite")
        yield sqlite
        await sqlite.close()
        return
    redis = Redis.from_url(REDIS)
    yield RedisIdempotencyStore(redis, namespace=stack.namespace)
    await redis.aclose()


def _key() -> dict[str, str]:
    return {IDEMPOTENCY_HEADER: uuid.uuid4().hex}


async def test_a_duplicate_while_the_first_runs_is_a_409(store):
    work = Work()
    work.gate.clear()
    key = _key()
    async with serve_app(_app(store, work)) as client:
        first = asyncio.create_task(client.post("/things", content=b"a", headers=key))
        await wait_for(lambda: work.runs, message="first request running")
        duplicate = await client.post("/things", content=b"a", headers=key)
        assert duplicate.status_code == 409
        assert duplicate.json()["code"] == "idempotency_in_progress"
        assert duplicate.headers["retry-after"] == "1"
        work.gate.set()
        assert (await first).status_code == 201
        replay = await client.post("/things", content=b"a", headers=key)
    assert replay.status_code == 201 and replay.headers[REPLAYED_HEADER] == "true"
    assert work.runs == [b"a"]


async def test_a_claim_is_renewed_while_its_request_runs(store, monkeypatch):
    monkeypatch.setattr(idempotency, "IN_FLIGHT_SECONDS", 0.3)
    work = Work()
    work.gate.clear()
    key = _key()
    async with serve_app(_app(store, work)) as client:
        first = asyncio.create_task(client.post("/things", content=b"a", headers=key))
        await wait_for(lambda: work.runs, message="first request running")
        await asyncio.sleep(0.9)  # three lifetimes of an unrenewed claim
        duplicate = await client.post("/things", content=b"a", headers=key)
        assert duplicate.status_code == 409
        work.gate.set()
        assert (await first).status_code == 201
    assert work.runs == [b"a"]


async def test_an_answer_that_says_not_done_is_not_kept(store):
    work = Work()
    work.fail_next = True
    key = _key()
    async with serve_app(_app(store, work)) as client:
        assert (await client.post("/things", content=b"a", headers=key)).status_code == 503
        retry = await client.post("/things", content=b"a", headers=key)
    assert retry.status_code == 201 and REPLAYED_HEADER not in retry.headers
    assert work.runs == [b"a", b"a"]


async def test_a_request_cancelled_at_its_deadline_leaves_its_key_free(store):
    work = Work()
    work.gate.clear()
    key = _key()
    async with serve_app(_app(store, work)) as client:
        late = await client.post("/things", content=b"a", headers={**key, DEADLINE_HEADER: "300"})
        assert late.status_code == 504 and late.json()["code"] == "deadline_exceeded"
        work.gate.set()
        retry = await client.post("/things", content=b"a", headers=key)
    assert retry.status_code == 201 and REPLAYED_HEADER not in retry.headers
    assert work.runs == [b"a", b"a"]


async def test_a_streamed_body_is_compared_without_running_the_work(store):
    work = Work()
    key = _key()

    async def chunks(*parts: bytes):
        for part in parts:
            yield part

    async with serve_app(_app(store, work)) as client:
        sent = await client.post("/things", content=chunks(b"ab", b"cd"), headers=key)
        same = await client.post("/things", content=chunks(b"a", b"bcd"), headers=key)
        other = await client.post("/things", content=chunks(b"ab", b"ce"), headers=key)
    assert sent.status_code == same.status_code == 201
    assert same.json() == sent.json() and same.headers[REPLAYED_HEADER] == "true"
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert work.runs == [b"abcd"]


@pytest.mark.distributed
@pytest.mark.parametrize("fault", ["cut", "black_hole"])
async def test_a_write_goes_ahead_without_the_store_while_redis_is_away(distributed_stack, fault):
    proxy = await TcpProxy("127.0.0.1", int(REDIS.rsplit(":", 1)[1].split("/")[0])).start()
    redis = Redis.from_url(f"redis://127.0.0.1:{proxy.port}/0", socket_timeout=2.0)
    work = Work()
    try:
        async with serve_app(_app(RedisIdempotencyStore(redis), work)) as client:
            await (proxy.cut() if fault == "cut" else proxy.black_hole())
            began = time.monotonic()
            resp = await client.post("/things", content=b"a", headers=_key())
            took = time.monotonic() - began
    finally:
        await proxy.close()
        await redis.aclose()
    assert resp.status_code == 201 and work.runs == [b"a"]
    assert took < 1.5  # not the client's 2 s socket timeout, nor longer


@pytest.mark.distributed
@pytest.mark.parametrize("fault", ["slow", "black_hole"])
async def test_a_write_cancelled_while_its_key_is_claimed_ends_at_once_and_does_nothing(
    distributed_stack: Stack, redis_proxy: TcpProxy, fault: str
) -> None:
    redis = Redis.from_url(f"redis://127.0.0.1:{redis_proxy.port}/0", socket_timeout=2.0)
    work = Work()
    app = _app(RedisIdempotencyStore(redis, namespace=distributed_stack.namespace), work)
    before = stray_tasks()

    async def post() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/things",
            "raw_path": b"/things",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (IDEMPOTENCY_HEADER.lower().encode(), uuid.uuid4().hex.encode()),
                (b"content-length", b"1"),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("testserver", 80),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"a", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            pass

        await app(scope, receive, send)

    try:
        await redis.ping()  # a pooled connection from before the fault
        await (redis_proxy.slow(0.3) if fault == "slow" else redis_proxy.black_hole())
        await cancel_at_each_step(post)
        await wait_for(lambda: not stray_tasks() - before, timeout=5.0, message="no task left")
    finally:
        await redis_proxy.restore()
        await redis.aclose()
    assert work.runs == []  # no cancelled request went on to the work
