#!/usr/bin/env python3
"""Login cost and what a login burst does to everybody else, side by side.

    .venv/bin/python bench/auth.py [--duration 5] [--connections 4] [--bursts 60,300] [--redis]

Starts `streamia serve users` (OWASP argon2id cost, one password worker: the numbers are per
core) and `streamia serve gateway` in front of it (127.0.0.1 trusted as the ingress, so each
simulated client has its own X-Forwarded-For address), on free ports with embedded SQLite;
with `--redis`, revocations and the gateway's limits live in Redis, as when distributed.

1. Logins straight at users, closed loop: logins/s and p50/p99 for one core.
2. Another user's `GET /api/users/me` through the gateway, alone and during a burst of
   concurrent unknown-email logins from one IP: p50/p99, errors and 503s next to the
   burst's own answers (401 checked, 429 refused by the gateway, 503 shed by users).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from gateway import (
    PASSWORD,
    REDIS_URL,
    Processes,
    clear_redis_namespace,
    free_port,
    register,
    streamia,
    wait_until,
)


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000 if ordered else 0.0


async def logins_per_core(users_url: str, email: str, args: argparse.Namespace) -> Sample:
    sample = Sample()
    deadline = time.perf_counter() + args.duration
    body = {"email": email, "password": PASSWORD}
    async with aiohttp.ClientSession() as http:

        async def worker() -> None:
            while (began := time.perf_counter()) < deadline:
                async with http.post(users_url + "/api/users/login", json=body) as resp:
                    await resp.read()
                    sample.statuses[resp.status] += 1
                sample.latencies.append(time.perf_counter() - began)

        await asyncio.gather(*(worker() for _ in range(args.connections)))
    return sample


async def others_during(
    gateway_url: str, token: str, burst: int, args: argparse.Namespace
) -> tuple[Sample, Counter[int]]:
    """`GET /me` from one IP for `duration` seconds while `burst` logins come from another."""
    me, answers = Sample(), Counter[int]()
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "10.0.0.2"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        deadline = time.perf_counter() + args.duration

        async def other_user() -> None:
            while (began := time.perf_counter()) < deadline:
                async with http.get(gateway_url + "/api/users/me", headers=headers) as resp:
                    await resp.read()
                    me.statuses[resp.status] += 1
                me.latencies.append(time.perf_counter() - began)

        async def attacker() -> None:
            body = {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "x"}
            async with http.post(
                gateway_url + "/api/users/login",
                json=body,
                headers={"X-Forwarded-For": "10.0.0.66"},
            ) as resp:
                await resp.read()
                answers[resp.status] += 1

        others = [asyncio.create_task(other_user()) for _ in range(2)]
        await asyncio.sleep(0.2)
        await asyncio.gather(*(attacker() for _ in range(burst)))
        await asyncio.gather(*others)
    return me, answers


async def bench(args: argparse.Namespace, procs: Processes) -> None:
    users_port, gateway_port = free_port(), free_port()
    users_url = f"http://127.0.0.1:{users_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    common = {"STREAMIA_DATA_DIR": str(procs.work / "data")}
    if args.redis:  # revocations (and the gateway's limits) in Redis, as distributed
        common |= {"STREAMIA_REDIS_URL": REDIS_URL, "STREAMIA_NAMESPACE": args.namespace}
    users = streamia(
        procs, "users", "users", users_port, {**common, "STREAMIA_PASSWORD_WORKERS": "1"}
    )
    gateway = streamia(
        procs,
        "gateway",
        "gateway",
        gateway_port,
        {
            **common,
            "STREAMIA_USERS_URL": users_url,
            "STREAMIA_TRUSTED_PROXIES": "127.0.0.1/32",
            "STREAMIA_RATE_LIMIT_GLOBAL": "1000000/minute",
        },
    )
    try:
        await asyncio.to_thread(wait_until, users_url + "/health", users)
        await asyncio.to_thread(wait_until, gateway_url + "/health", gateway)
        token = await asyncio.to_thread(register, users_url)
        email = _email_of(token)
        login = await logins_per_core(users_url, email, args)
        print(f"\nlogins straight at users, 1 password worker, {args.connections} clients")
        print(f"{'logins/s':>10}{'p50 ms':>10}{'p99 ms':>10}  statuses")
        print(
            f"{len(login.latencies) / args.duration:>10.1f}{login.pct(0.5):>10.1f}"
            f"{login.pct(0.99):>10.1f}  {dict(login.statuses)}"
        )
        print(f"\nanother user's GET /api/users/me through the gateway, {args.duration} s each")
        print(f"{'burst':>8}{'p50 ms':>10}{'p99 ms':>10}{'503s':>6}{'errors':>8}  burst answers")
        for burst in [0, *args.bursts]:
            me, answers = await others_during(gateway_url, token, burst, args)
            errors = sum(n for status, n in me.statuses.items() if status != 200)
            print(
                f"{burst:>8}{me.pct(0.5):>10.1f}{me.pct(0.99):>10.1f}{me.statuses[503]:>6}"
                f"{errors:>8}  {dict(sorted(answers.items())) or '-'}"
            )
    finally:
        procs.stop_all()


def _email_of(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["email"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=4, help="concurrent logins")
    parser.add_argument(
        "--bursts", type=lambda s: [int(n) for n in s.split(",")], default=[60, 300]
    )
    parser.add_argument(
        "--redis",
        action="store_true",
        help=f"revocations and the gateway's limits in Redis ({REDIS_URL}, a throwaway namespace)",
    )
    args = parser.parse_args()
    args.namespace = f"benchauth{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="streamia-bench-auth-"))
    procs = Processes(workdir)
    try:
        asyncio.run(bench(args, procs))
    except BaseException:
        print(procs.logs(), file=sys.stderr)
        raise
    finally:
        procs.stop_all()
        if args.redis:
            clear_redis_namespace(args.namespace)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
