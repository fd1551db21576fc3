#!/usr/bin/env python3
"""Embedded mode under concurrent writes: many writers through one process and its SQLite files.

    .venv/bin/python bench/embedded.py [--writers 200] [--seconds 20] [--strict]

Starts the embedded platform the way the e2e suite does (tests/e2e/harness.py: `streamia up`,
one process, every service with its own SQLite file, a temporary data dir), makes --writers
accounts and a few movies, then runs --writers closed-loop writers at once for --seconds, each
through the gateway and each from its own address (`X-Forwarded-For` from a trusted proxy), in
turn: a progress report (PUT /api/playback/progress/:id), a rating (POST /api/ratings, an
upsert), a comment (POST /api/comments) and a favourite added or removed (POST /api/favorites,
DELETE /api/favorites/:movieId). Every answer must be the documented success; anything else
(a 5xx, a 504 from the gateway's timeout, "database is locked", a dropped connection) counts as
an error. Target: p99 < 500 ms and 0 errors.

The load generator runs in this process, on the same cores as the platform.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
P99_TARGET_MS = 500.0
MOVIES = 8


from _harness import harness  # noqa: E402
from playback import cpu_seconds  # noqa: E402


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] if ordered else 0.0


async def settled(pid: int, quiet: float = 0.02, patience: float = 120.0) -> None:
    """Wait until the process spends under `quiet` of a CPU for a second: its backlog done."""
    give_up = time.monotonic() + patience
    while time.monotonic() < give_up:
        before = cpu_seconds(pid)
        await asyncio.sleep(1.0)
        if cpu_seconds(pid) - before < quiet:
            return
    print(f"(the platform was still busy after {patience:.0f} s)", flush=True)


async def writer(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    address: str,
    movies: list[str],
    deadline: float,
    latencies: dict[str, list[float]],
    errors: Counter[str],
) -> None:
    """One account writing in turn until the deadline; every answer checked."""
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": address}
    favourite: set[str] = set()
    position = itertools.count(1)
    for turn in itertools.count():
        if time.perf_counter() >= deadline:
            return
        movie = movies[turn // 4 % len(movies)]
        kind = ("progress", "rating", "comment", "favorite")[turn % 4]
        if kind == "progress":
            body = {"position": float(next(position)), "duration": 5400.0}
            call = http.put(f"{url}/api/playback/progress/{movie}", json=body, headers=headers)
            expected: tuple[int, ...] = (200,)
        elif kind == "rating":
            body = {"movieId": movie, "rating": turn % 5 + 1}
            call = http.post(f"{url}/api/ratings", json=body, headers=headers)
            expected = (200, 201)
        elif kind == "comment":
            body = {"movieId": movie, "text": f"Seen it, turn {turn}"}
            call = http.post(f"{url}/api/comments", json=body, headers=headers)
            expected = (201,)
        elif movie in favourite:
            call = http.delete(f"{url}/api/favorites/{movie}", headers=headers)
            expected = (200,)
        else:
            call = http.post(f"{url}/api/favorites", json={"movieId": movie}, headers=headers)
            expected = (201,)
        began = time.perf_counter()
        try:
            async with call as resp:
                text = await resp.text()
                if resp.status not in expected:
                    errors[f"{kind} {resp.status} {text[:80]}"] += 1
                    continue
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors[f"{kind} {type(exc).__name__}"] += 1
            continue
        latencies[kind].append((time.perf_counter() - began) * 1000)
        if kind == "favorite":
            favourite ^= {movie}


async def bench(args: argparse.Namespace, platform) -> int:
    url = platform.gateway
    async with httpx.AsyncClient(timeout=60.0) as client:
        print(f"creating {MOVIES} movies and {args.writers} accounts ...", flush=True)
        movies = await harness.create_movies(platform, client, MOVIES)
        gate = asyncio.Semaphore(8)

        async def account():
            async with gate:
                return await platform.register(client)

        accounts = await asyncio.gather(*(account() for _ in range(args.writers)))
        # Each account's first report (playback.started and the projection's first look-up)
        # happens here, so the measured writes are the steady state of a busy evening.
        for movie in movies:
            await harness.add_activity(
                platform, client, accounts[0], [movie], favorites=False, comments=False
            )

    pid = platform.procs[harness.EMBEDDED_PROCESS].pid
    # The sign-ups' sagas (welcome emails, display names) are not the writes measured.
    await settled(pid)
    print(f"{args.writers} writers for {args.seconds:.0f} s ...", flush=True)
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    load_before = os.getloadavg()[0]
    cpu_before = cpu_seconds(pid)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=args.writers)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        started = time.perf_counter()
        deadline = started + args.seconds
        await asyncio.gather(
            *(
                writer(
                    http,
                    url,
                    a.token,
                    f"10.1.{i // 256}.{i % 256}",
                    movies,
                    deadline,
                    latencies,
                    errors,
                )
                for i, a in enumerate(accounts)
            )
        )
        elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    every = [ms for values in latencies.values() for ms in values]
    p99 = percentile(every, 99)
    failed = sum(errors.values())
    print()
    print(f"Embedded mode, {args.writers} concurrent writers through the gateway")
    print(f"{'write':>10}{'count':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind in ("progress", "rating", "comment", "favorite"):
        values = latencies[kind]
        print(
            f"{kind:>10}{len(values):>8}{percentile(values, 50):>9.1f}"
            f"{percentile(values, 99):>9.1f}{max(values, default=0.0):>9.1f}"
        )
    print(
        f"{'all':>10}{len(every):>8}{percentile(every, 50):>9.1f}{p99:>9.1f}"
        f"{max(every, default=0.0):>9.1f}   {len(every) / elapsed:.0f} writes/s, {failed} errors"
    )
    for error, count in errors.most_common(8):
        print(f"  {count} x {error}")
    # One process, one event loop: what it spends per write bounds the writes a second.
    print(
        f"platform process: {1000 * cpu / max(len(every), 1):.1f} ms CPU per write,"
        f" {100 * cpu / elapsed:.0f} % of one CPU while writing"
    )
    ok = p99 < P99_TARGET_MS and failed == 0
    print(
        f"target p99 < {P99_TARGET_MS:.0f} ms and 0 errors: p99 is {p99 / P99_TARGET_MS:.2f}x"
        f" the target, {failed} errors -> {'PASS' if ok else 'FAIL'}"
    )
    print(
        f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on"
        f" {os.cpu_count()} CPUs; the load generator shares them)"
    )
    return 0 if ok or not args.strict else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="streamia-bench-embedded-") as tmp:
        platform = harness.Platform(
            "embedded", Path(tmp), extra_env={"STREAMIA_TRUSTED_PROXIES": "127.0.0.1/32"}
        )
        print("starting the embedded platform ...", flush=True)
        try:
            platform.start()
            return asyncio.run(bench(args, platform))
        except BaseException:
            print(platform.log_tail(harness.EMBEDDED_PROCESS, 30), file=sys.stderr)
            raise
        finally:
            platform.close()


if __name__ == "__main__":
    sys.exit(main())
