#!/usr/bin/env python3
"""Playback: sustained progress writes through the gateway, and `GET /continue` for a user
with a long history, in distributed mode.

    .venv/bin/python bench/playback.py [--seconds 15] [--users 400] [--connections 64]
                                       [--history 500] [--strict]

Starts the platform the way the e2e suite does (tests/e2e/harness.py: one `streamia serve`
process per service on the local PostgreSQL, RabbitMQ and Redis, a fresh namespace), then:

1. Progress writes: --users accounts each watching one of 50 movies; --connections
   closed-loop workers PUT `/api/playback/progress/:id` through the gateway for --seconds
   (each user's first report is made before, so this is the steady state: the one-UPDATE
   path). Target: >= 2,000 writes/s with p99 < 50 ms.
2. `GET /api/playback/continue?limit=20` (the home page's row) for a user with --history
   movies in progress, one request at a time. Target: p99 < 20 ms.

Rate limiting stays on at both layers, sized for the bench: a few hundred accounts stand in
for thousands of viewers who each write every 10 s, so each writes several times a second.
Each viewer comes from its own address (`X-Forwarded-For` from a trusted proxy, as behind an
ingress), so the gateway's per-IP limit counts per viewer, at GLOBAL_LIMIT, rather than one
127.0.0.1 counter for everyone; the per-user progress limit is PROGRESS_LIMIT.

The load generator runs in this process, on the same cores as the platform: on a 2-core
machine it takes its share of the CPU it measures. The CPU each process spent per write
(Linux /proc) says what limits the rate. Everything it creates is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
WRITES_TARGET = 2000.0
WRITES_P99_MS = 50.0
CONTINUE_P99_MS = 20.0
GLOBAL_LIMIT = "6000/minute"  # per viewer address: 100 requests/s
PROGRESS_LIMIT = "500/10 seconds"  # per account


from _harness import harness  # noqa: E402


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] if ordered else 0.0


def viewer_address(i: int) -> str:
    return f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def sustained_writes(
    url: str, viewers: list[tuple[str, str]], seconds: float, connections: int
) -> tuple[int, int, float, list[float]]:
    """Closed-loop PUTs for `seconds`: (ok, errors, elapsed, latencies in ms)."""
    turns = itertools.cycle(
        [(token, movie, viewer_address(i)) for i, (token, movie) in enumerate(viewers)]
    )
    latencies: list[float] = []
    errors = 0
    position = itertools.count(1)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while (began := time.perf_counter()) < deadline:
                token, movie_id, address = next(turns)
                body = {"position": float(next(position) % 3000), "duration": 5400.0}
                headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": address}
                try:
                    async with http.put(
                        f"{url}/api/playback/progress/{movie_id}", json=body, headers=headers
                    ) as resp:
                        await resp.read()
                        if resp.status != 200:
                            errors += 1
                            continue
                except aiohttp.ClientError:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - began) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return len(latencies), errors, elapsed, latencies


async def continue_latency(url: str, token: str, requests: int) -> list[float]:
    latencies = []
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(requests):
            began = time.perf_counter()
            async with http.get(f"{url}/api/playback/continue?limit=20", headers=headers) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            latencies.append((time.perf_counter() - began) * 1000)
    return latencies


async def report(client: httpx.AsyncClient, url: str, token: str, movie_id: str) -> None:
    """One set-up report (not measured); a gateway timeout on a loaded machine is retried."""
    for _ in range(5):
        resp = await client.put(
            f"{url}/api/playback/progress/{movie_id}",
            json={"position": 60.0, "duration": 5400.0},
            headers={"Authorization": f"Bearer {token}"},
        )
        if resp.status_code not in (502, 503, 504):
            break
        await asyncio.sleep(1.0)
    if resp.status_code != 200:
        raise SystemExit(f"PUT progress -> {resp.status_code} {resp.text[:300]}")


async def bench(args: argparse.Namespace, platform) -> int:
    gateway = platform.gateway
    async with httpx.AsyncClient(timeout=60.0, limits=httpx.Limits(max_connections=32)) as client:
        print(f"creating {args.history} movies and {args.users} users ...", flush=True)
        movies = await harness.create_movies(platform, client, args.history)
        gate = asyncio.Semaphore(8)

        async def account():
            async with gate:
                return await platform.register(client)

        users = await asyncio.gather(*(account() for _ in range(args.users)))
        viewers = [(u.token, movies[i % 50]) for i, u in enumerate(users)]
        print("first reports (each user starts a movie) ...", flush=True)

        async def first(token: str, movie_id: str) -> None:
            async with gate:
                await report(client, gateway, token, movie_id)

        await asyncio.gather(*(first(t, m) for t, m in viewers))
        binger = users[0]
        print(f"one user starts all {args.history} movies ...", flush=True)
        await asyncio.gather(*(first(binger.token, m) for m in movies))

    print(f"sustained writes: {args.connections} connections for {args.seconds:.0f} s", flush=True)
    load_before = os.getloadavg()[0]
    pids = {name: platform.procs[name].pid for name in ("gateway", "playback")}
    pids["load generator"] = os.getpid()
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    ok, errors, elapsed, latencies = await sustained_writes(
        gateway, viewers, args.seconds, args.connections
    )
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    rate, p50, p99 = ok / elapsed, percentile(latencies, 50), percentile(latencies, 99)
    cont = await continue_latency(gateway, binger.token, args.requests)
    c50, c99 = percentile(cont, 50), percentile(cont, 99)
    writes_ok = rate >= WRITES_TARGET and p99 < WRITES_P99_MS
    continue_ok = c99 < CONTINUE_P99_MS
    print()
    print(f"Progress writes through the gateway (distributed), {args.users} users")
    print(
        f"  {rate:8.0f} writes/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   {ok} ok, {errors} errors"
    )
    print(
        f"  target >= {WRITES_TARGET:.0f} writes/s, p99 < {WRITES_P99_MS:.0f} ms: "
        f"{'PASS' if writes_ok else 'FAIL'}"
    )
    print(
        "  CPU per write: "
        + ", ".join(f"{name} {1e6 * spent / max(ok, 1):.0f} us" for name, spent in cpu.items())
        + " (PostgreSQL, Redis and the broker take the rest of the 2 cores)"
    )
    print(
        "  CPU share while writing: "
        + ", ".join(f"{name} {100 * spent / elapsed:.0f} %" for name, spent in cpu.items())
    )
    print(f"GET /continue?limit=20, a user with {args.history} movies in progress")
    print(f"  p50 {c50:6.1f} ms   p99 {c99:6.1f} ms over {len(cont)} requests")
    print(f"  target p99 < {CONTINUE_P99_MS:.0f} ms: {'PASS' if continue_ok else 'FAIL'}")
    print(
        f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on"
        f" {os.cpu_count()} CPUs; the load generator shares them)"
    )
    return 0 if (writes_ok and continue_ok) or not args.strict else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--history", type=int, default=500)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    from streamia_kit.testing import infrastructure_status

    down = [name for name, ok in infrastructure_status().items() if not ok]
    if down:
        raise SystemExit(f"distributed mode needs {', '.join(down)} on 127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="streamia-bench-playback-") as tmp:
        platform = harness.Platform(
            "distributed",
            Path(tmp),
            extra_env={
                "STREAMIA_TRUSTED_PROXIES": "127.0.0.1/32",
                "STREAMIA_RATE_LIMIT_GLOBAL": GLOBAL_LIMIT,
                "STREAMIA_PROGRESS_RATE_LIMIT": PROGRESS_LIMIT,
            },
        )
        print(f"starting the platform (namespace {platform.namespace}) ...", flush=True)
        try:
            platform.start()
            return asyncio.run(bench(args, platform))
        except BaseException:
            for name in harness.ALL_SERVICES:
                print(platform.log_tail(name, 10), file=sys.stderr)
            raise
        finally:
            platform.close()


if __name__ == "__main__":
    sys.exit(main())
