#!/usr/bin/env python3
"""Deletion saga latency and one consumer's throughput, in distributed mode.

    .venv/bin/python bench/saga.py [--runs 50] [--items 100] [--events 20000]
                                   [--batch 1 64] [--strict]

Starts the platform the way the e2e suite does (tests/e2e/harness.py: one `streamia serve`
process per service on the local PostgreSQL, RabbitMQ and Redis, a fresh namespace) and
measures:

1. Saga latency: a user with N favorites, N ratings and N comments deletes their account;
   the time from the DELETE's response until none of their rows is left in the favorites,
   ratings and comments databases (polled every few ms). p50 and p99 over --runs runs
   (--runs 0 skips it). Target: p99 < 500 ms.
2. Consumer throughput of one process: --events `movie.created` envelopes put straight on
   the favorites service's `movie.created` queue; events per second until its inbox holds
   them all, and the process's CPU per event. Twice per batch size (STREAMIA_CONSUMER_BATCH,
   the favorites process restarted with each of --batch; the first, 1 by default, is the
   peer the others are compared with): a backlog (published while the process is stopped,
   then drained: what the consumer alone does) and live (published while it consumes: this
   process's publishing can be the limit). Target: >= 5,000 events/s draining a backlog.

Everything it creates (databases, queues, Redis keys, data dir) is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import httpx

ROOT = Path(__file__).resolve().parents[1]
SAGA_TARGET_P99_MS = 500.0
THROUGHPUT_TARGET = 5000.0
BATCH_SETTING = "STREAMIA_CONSUMER_BATCH"
PREFETCH = 256  # the services' default (STREAMIA_PREFETCH)
POLL_SECONDS = 0.002
CASCADE_TIMEOUT = 30.0
SERVICES = ("favorites", "ratings", "comments")


from _harness import harness  # noqa: E402


def default_batch() -> int:
    """The consumer batch size a service runs with unless told (`consumer_batch`)."""
    from streamia_kit.config import ServiceSettings

    return int(ServiceSettings.model_fields["consumer_batch"].default)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 50 samples is the largest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


async def wait_for_projections(platform, movie_ids: list[str], limit: float = 60.0) -> None:
    """Every consumer has seen every movie.created, so item writes never catch up by HTTP."""
    marks = ",".join("?" * len(movie_ids))
    async with platform.databases() as dbs:
        for service in SERVICES:

            async def seen(service: str = service) -> bool:
                n = await dbs.count(
                    service,
                    f"SELECT count(*) FROM movie_projection WHERE movie_id IN ({marks})",
                    *movie_ids,
                )
                return n == len(movie_ids)

            await harness.wait_until(
                seen, limit, interval=0.1, message=f"{service}'s movie projection"
            )


async def saga_latency(
    platform,
    client: httpx.AsyncClient,
    movie_ids: list[str],
    runs: int,
    deadline: float,
    per_service: dict[str, list[float]],
) -> list[float]:
    """Milliseconds from each DELETE's response to an empty footprint in all three services."""
    samples: list[float] = []
    per_service_run: dict[str, float] = {}
    async with platform.databases() as dbs:
        queries = [
            (service, f"SELECT count(*) FROM {table} WHERE user_id = ?")
            for service, table in (
                ("favorites", "favorites"),
                ("ratings", "ratings"),
                ("comments", "comments"),
            )
        ]

        async def remaining(user_id: str) -> list[int]:
            return list(await asyncio.gather(*(dbs.count(s, q, user_id) for s, q in queries)))

        for run in range(1, runs + 1):
            if time.monotonic() > deadline:
                print(f"  time budget spent after {run - 1} runs", flush=True)
                break
            account = await platform.register(client, firstName="Bench")
            # Set-up, not measured: 8 at a time, as 16-32 made playback (4 pooled connections,
            # 1 s to get one) answer 503 database_unavailable on a machine at load ~9.
            await harness.add_activity(
                platform, client, account, movie_ids, concurrency=8, direct=True
            )
            counts = await remaining(account.id)
            if counts != [len(movie_ids)] * 3:
                raise SystemExit(f"run {run}: expected {len(movie_ids)} of each, found {counts}")
            await harness.delete_account(platform, client, account)
            start = time.perf_counter()
            give_up = time.monotonic() + CASCADE_TIMEOUT
            while True:
                left = await remaining(account.id)
                now = (time.perf_counter() - start) * 1000
                for service, n in zip(SERVICES, left, strict=True):
                    if not n and service not in per_service_run:
                        per_service_run[service] = now
                if not any(left):
                    break
                if time.monotonic() > give_up:
                    raise SystemExit(f"run {run}: cascade unfinished after {CASCADE_TIMEOUT}s")
                await asyncio.sleep(POLL_SECONDS)
            samples.append(now)
            for service, ms in per_service_run.items():
                per_service[service].append(ms)
            per_service_run.clear()
            if run % 10 == 0 or run == runs:
                print(
                    f"  run {run:>3}: {samples[-1]:7.1f} ms  (p50 so far "
                    f"{statistics.median(samples):.1f} ms)",
                    flush=True,
                )
    return samples


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bodies(events: int) -> list[tuple[str, bytes]]:
    from streamia_kit.bus import encode
    from streamia_kit.events import Envelope, MovieCreated

    bodies = []
    for n in range(events):
        envelope = Envelope.wrap(
            MovieCreated(
                movie_id=f"bench{uuid.uuid4().hex[:20]}",
                title=f"Bench {n}",
                category="Bench",
                duration=60.0,
                version=time.time(),
            ),
            "bench/saga",
        )
        bodies.append((envelope.id, encode(envelope)))
    return bodies


async def _publish(channel, routing_key: str, bodies: list[tuple[str, bytes]]) -> None:
    import aio_pika

    # Straight onto the favorites queue (the default exchange routes by queue name): only
    # the consumer under test works, the others stay idle.
    for offset in range(0, len(bodies), 500):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(
                        body,
                        message_id=event_id,
                        type="movie.created",
                        content_type="application/cloudevents+json",
                        headers={"x-streamia-attempt": 1},
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=routing_key,
                )
                for event_id, body in bodies[offset : offset + 500]
            )
        )


async def client_floor(bodies: list[tuple[str, bytes]], prefetch: int) -> tuple[float, float]:
    """The peer a consumer cannot beat: aio-pika alone taking the same deliveries off a
    durable queue of the same broker (a no-op callback, one ack per 32), in this process.
    (events/s, CPU ms per delivery of this process)."""
    import aio_pika

    from streamia_kit.testing import AMQP

    connection = await aio_pika.connect(AMQP, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(f"bench-floor-{uuid.uuid4().hex[:8]}", durable=True)
        try:
            await _publish(channel, queue.name, bodies)
            consuming = await connection.channel()
            await consuming.set_qos(prefetch_count=prefetch)
            source = await consuming.declare_queue(queue.name, passive=True)
            got = 0
            done = asyncio.Event()
            acks: set[asyncio.Future] = set()

            def on_message(message) -> None:
                nonlocal got
                got += 1
                if got % 32 == 0 or got == len(bodies):
                    ack = asyncio.ensure_future(message.ack(multiple=True))
                    acks.add(ack)
                    ack.add_done_callback(acks.discard)
                if got == len(bodies):
                    done.set()

            start, cpu = time.perf_counter(), time.process_time()
            await source.consume(on_message, no_ack=False)
            await asyncio.wait_for(done.wait(), 600)
            took, cpu = time.perf_counter() - start, time.process_time() - cpu
            await asyncio.gather(*acks)
        finally:
            await queue.delete(if_unused=False, if_empty=False)
    return len(bodies) / took, cpu * 1000 / len(bodies)


class Rate(NamedTuple):
    overall: float  # events/s from the first publish (live) or first event applied (backlog)
    steady: float  # events/s between 10 % and 90 % applied
    published: float  # seconds the publishing took
    cpu_ms: float | None  # CPU ms the consumer's process spent per event


async def consumer_throughput(platform, events: int, backlog: bool) -> Rate:
    """`events` movie.created envelopes straight onto the favorites service's queue, until
    its inbox holds them all. Live: published while the consumer runs (the publisher, this
    process, can be the limit). Backlog: published while the favorites process is stopped,
    then drained by it once started, timed from its first applied event (a consumer catching
    up after an outage: what it alone can do). CPU: user + system time of the consumer's
    process over the same span, per event (what the rate is bound by on an idle core)."""
    import aio_pika

    from streamia_kit.testing import AMQP

    queue = "favorites.movie.created"
    routing_key = f"{platform.namespace}.{queue}"
    bodies = _bodies(events)
    async with platform.databases() as dbs:

        async def processed() -> int:
            return await dbs.count("favorites", "SELECT count(*) FROM inbox WHERE queue = ?", queue)

        before = await processed()
        connection = await aio_pika.connect(AMQP, timeout=10)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            marks: dict[str, float] = {}
            cpu: dict[str, float | None] = {}
            if backlog:
                platform.stop("favorites")
                start = time.perf_counter()
                await _publish(channel, routing_key, bodies)
                published = time.perf_counter() - start
                # Watched from before the process starts: it consumes before it reports healthy.
                starting = asyncio.create_task(
                    asyncio.to_thread(platform.start_service, "favorites")
                )
                await _watch(processed, before, events, marks, platform, cpu)
                await starting
                pid = platform.procs["favorites"].pid
                start = marks["first"]
            else:
                pid = platform.procs["favorites"].pid
                cpu["first"] = cpu_seconds(pid)
                start = time.perf_counter()
                watcher = asyncio.create_task(
                    _watch(processed, before, events, marks, platform, cpu)
                )
                await _publish(channel, routing_key, bodies)
                published = time.perf_counter() - start
                await watcher
        cpu_after = cpu_seconds(pid)
        total = marks["100"] - start
        steady = (0.8 * events) / (marks["90"] - marks["10"]) if marks["90"] > marks["10"] else 0
        cpu_ms = None
        cpu_before = cpu.get("first")
        if cpu_before is not None and cpu_after is not None:
            cpu_ms = (cpu_after - cpu_before) * 1000 / events
        return Rate(events / total, steady, published, cpu_ms)


async def _watch(
    processed,
    before: int,
    events: int,
    marks: dict[str, float],
    platform,
    cpu: dict[str, float | None],
    limit: float = 600.0,
) -> None:
    give_up = time.monotonic() + limit
    while True:
        done = await processed() - before
        now = time.perf_counter()
        if done and "first" not in marks:
            marks["first"] = now
            # The consumer's CPU from here (not its start-up's).
            cpu.setdefault("first", cpu_seconds(platform.procs["favorites"].pid))
        for pct in (10, 90, 100):
            if done >= events * pct / 100 and str(pct) not in marks:
                marks[str(pct)] = now
        if done >= events:
            return
        if time.monotonic() > give_up:
            raise SystemExit(f"favorites processed {done}/{events} events in {limit}s")
        await asyncio.sleep(0.05)  # a count of the inbox: PostgreSQL work beside the consumer


async def bench(args: argparse.Namespace, platform) -> int:
    budget_end = time.monotonic() + args.max_minutes * 60
    samples: list[float] = []
    per_service: dict[str, list[float]] = {s: [] for s in SERVICES}
    if args.runs:
        async with httpx.AsyncClient(
            timeout=30.0, limits=httpx.Limits(max_connections=64)
        ) as client:
            print(f"creating {args.items} movies ...", flush=True)
            movie_ids = await harness.create_movies(platform, client, args.items)
            await wait_for_projections(platform, movie_ids)

            print(
                f"saga latency: {args.runs} runs, {args.items} favorites + {args.items} ratings"
                f" + {args.items} comments per user",
                flush=True,
            )
            samples = await saga_latency(
                platform, client, movie_ids, args.runs, budget_end, per_service
            )

    floor = floor_cpu = 0.0
    if args.events:
        print(f"aio-pika alone: {args.events} deliveries off a durable queue", flush=True)
        floor, floor_cpu = await client_floor(_bodies(args.events), PREFETCH)
    rates: list[tuple[int, str, Rate]] = []
    running = args.saga_batch or default_batch()  # what the platform started with
    for size in args.batch if args.events else ():
        if size != running:  # the favorites process again, with this batch size
            platform.extra_env[BATCH_SETTING] = str(size)
            platform.restart("favorites")
            running = size
        for mode in ("backlog", "live"):
            print(
                f"consumer throughput: {args.events} movie.created events -> favorites"
                f" (batch {size}, {mode})",
                flush=True,
            )
            rate = await consumer_throughput(platform, args.events, mode == "backlog")
            rates.append((size, mode, rate))

    saga_ok = True
    print()
    if samples:
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        saga_ok = p99 < SAGA_TARGET_P99_MS
        print(
            f"Saga (mode {platform.mode}), {len(samples)} runs, "
            f"{args.items}+{args.items}+{args.items} rows per user"
        )
        print(
            f"  DELETE response -> cascade complete:  p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   "
            f"min {min(samples):.1f}   max {max(samples):.1f}"
        )
        for service, values in per_service.items():
            print(
                f"    {service:<10} done after  p50 {percentile(values, 50):7.1f} ms   "
                f"p99 {percentile(values, 99):7.1f} ms"
            )
        print(f"  target p99 < {SAGA_TARGET_P99_MS:.0f} ms: {'PASS' if saga_ok else 'FAIL'}")
    rate_ok = not args.events
    if args.events:
        print(f"One consumer process (favorites, movie.created), {args.events} events per run")
        print("  batch  mode      events/s (ratio)   steady 10-90 %   CPU ms/event   published/s")
        peer = {mode: rate.overall for size, mode, rate in rates if size == args.batch[0]}
        for size, mode, rate in rates:
            cpu = f"{rate.cpu_ms:.3f}" if rate.cpu_ms else "-"
            print(
                f"  {size:>5}  {mode:<8} {rate.overall:8.0f} ({rate.overall / peer[mode]:4.1f}x)"
                f"   {rate.steady:8.0f}         {cpu:>6}"
                f"         {args.events / rate.published:8.0f}"
            )
        print(
            f"  peer: aio-pika alone (no-op callback)   {floor:8.0f} events/s"
            f"   CPU {floor_cpu:.3f} ms/event (the client library's share of the consumer's)"
        )
        drained = [rate.overall for size, mode, rate in rates if mode == "backlog"]
        rate_ok = bool(drained) and drained[-1] >= THROUGHPUT_TARGET
        print(
            f"  target >= {THROUGHPUT_TARGET:.0f} events/s (batch {args.batch[-1]}, backlog):"
            f" {'PASS' if rate_ok else 'FAIL'}"
        )
    print(
        f"(machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    return 0 if (saga_ok and rate_ok) or not args.strict else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="saga runs (0: skip the saga)")
    parser.add_argument(
        "--items",
        type=int,
        default=100,
        help="favorites, ratings and comments per user (and movies made)",
    )
    parser.add_argument(
        "--events", type=int, default=20000, help="events per throughput run (0: none)"
    )
    parser.add_argument(
        "--saga-batch",
        type=int,
        default=0,
        help="STREAMIA_CONSUMER_BATCH of every service during the saga runs (default: shipped)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=None,
        help="consumer batch sizes measured one after the other (STREAMIA_CONSUMER_BATCH);"
        " the first is the peer the others are compared with (default: 1 and the shipped"
        " setting)",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=10.0,
        help="stop the latency runs early once this much time has gone",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if not args.batch:
        args.batch = [1, default_batch()]

    from streamia_kit.testing import infrastructure_status

    down = [name for name, ok in infrastructure_status().items() if not ok]
    if down:
        raise SystemExit(f"distributed mode needs {', '.join(down)} on 127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="streamia-bench-saga-") as tmp:
        extra = {BATCH_SETTING: str(args.saga_batch)} if args.saga_batch else {}
        platform = harness.Platform("distributed", Path(tmp), extra_env=extra)
        print(f"starting the platform (namespace {platform.namespace}) ...", flush=True)
        started = time.monotonic()
        try:
            platform.start()
            print(f"  up in {time.monotonic() - started:.1f} s", flush=True)
            return asyncio.run(bench(args, platform))
        except BaseException:
            for name in harness.ALL_SERVICES:
                print(platform.log_tail(name, 10), file=sys.stderr)
            raise
        finally:
            platform.close()


if __name__ == "__main__":
    sys.exit(main())
