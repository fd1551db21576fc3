#!/usr/bin/env python3
"""Gateway overhead: `GET /api/users/me` through the gateway and straight at users, one run.

    .venv/bin/python bench/gateway.py [--duration 10] [--connections 32] [--min-ratio 0.5]

Starts `streamia serve users` and `streamia serve gateway` as subprocesses on free ports
(embedded SQLite in a temporary data dir, gateway rate limits off), registers a user, then
loads both URLs with wrk when it is installed (else a bounded aiohttp load generator) and
prints throughput, p50/p99 latency and the gateway/direct throughput ratio (target >= 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PASSWORD = "Str0ng!Passw0rd"


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    tool: str
    cpu_us: float | None = None  # CPU of the process under test per request (Linux)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (None where /proc is missing):
    unlike throughput, it hardly moves with what else the machine is running."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(proc: subprocess.Popen, name: str, url: str, token: str, args) -> Result:
    """`load`, with the CPU the process `proc` spent on each request."""
    before = cpu_seconds(proc.pid)
    result = await load(name, url, token, args)
    after = cpu_seconds(proc.pid)
    if before is not None and after is not None and result.requests:
        result.cpu_us = (after - before) / result.requests * 1e6
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(service: str, port: int, data_dir: Path, extra: dict[str, str], log: Path):
    """`streamia serve <service>` with its own port and data dir; output goes to `log`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STREAMIA_") or k == "STREAMIA_ENVIRONMENT"
    }
    env.update(
        {
            "STREAMIA_PORT": str(port),
            "STREAMIA_HOST": "127.0.0.1",
            "STREAMIA_DATA_DIR": str(data_dir),
            "STREAMIA_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    streamia = BIN / "streamia"
    if not streamia.exists():
        raise SystemExit(f"{streamia} not found: run `.venv/bin/uv sync --all-packages` first")
    return subprocess.Popen(
        [str(streamia), "serve", service],
        env=env,
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def wait_healthy(http: aiohttp.ClientSession, url: str, proc) -> None:
    """Poll /health; the caller prints the service logs when this gives up."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited early (exit code {proc.returncode})")
        try:
            async with http.get(url + "/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit(f"{url} did not become healthy in 60 s")


async def register(http: aiohttp.ClientSession, users_url: str) -> str:
    body = {
        "firstName": "Bench",
        "lastName": "Mark",
        "age": 30,
        "email": f"bench-{uuid.uuid4().hex[:10]}@example.com",
        "password": PASSWORD,
        "confirmPassword": PASSWORD,
    }
    async with http.post(users_url + "/api/users/register", json=body) as resp:
        data = await resp.json()
        if resp.status != 201 or "token" not in data:
            raise SystemExit(f"registration failed: {resp.status} {data}")
        return data["token"]


async def check(http: aiohttp.ClientSession, url: str, token: str) -> None:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        if resp.status != 200:
            raise SystemExit(f"GET {url} answered {resp.status}: {await resp.text()}")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(wrk: str, name: str, url: str, token: str, args: argparse.Namespace) -> Result:
    out = subprocess.run(
        [
            wrk,
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{args.duration}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=args.duration + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return Result(name, rps, p50, p99, total, errors, "wrk")


async def run_python(name: str, url: str, token: str, args: argparse.Namespace) -> Result:
    """A bounded closed-loop load generator for machines without wrk."""
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector) as http:
        deadline = time.perf_counter() + args.duration

        async def worker() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < deadline:
                try:
                    async with http.get(url, headers=headers) as resp:
                        await resp.read()
                        if resp.status != 200:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - now)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0
        )

    return Result(
        name, len(latencies) / elapsed, pct(0.50), pct(0.99), len(latencies), errors, "python"
    )


async def load(name: str, url: str, token: str, args: argparse.Namespace) -> Result:
    if args.wrk:
        return await asyncio.to_thread(run_wrk, args.wrk, name, url, token, args)
    return await run_python(name, url, token, args)


async def bench(args: argparse.Namespace, workdir: Path) -> tuple[Result, Result]:
    users_port, gateway_port = free_port(), free_port()
    users_url = f"http://127.0.0.1:{users_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    users = start("users", users_port, workdir / "data", {}, workdir / "users.log")
    gateway = start(
        "gateway",
        gateway_port,
        workdir / "data",
        {
            "STREAMIA_USERS_URL": users_url,
            "STREAMIA_RATE_LIMITS_ENABLED": "false",
        },
        workdir / "gateway.log",
    )
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, users_url, users)
            await wait_healthy(http, gateway_url, gateway)
            token = await register(http, users_url)
            direct_me = users_url + "/api/users/me"
            gateway_me = gateway_url + "/api/users/me"
            await check(http, direct_me, token)
            await check(http, gateway_me, token)
        warm = argparse.Namespace(**{**vars(args), "duration": 2})
        await load("warm-up", direct_me, token, warm)
        await load("warm-up", gateway_me, token, warm)
        direct = await measured(users, "direct (users)", direct_me, token, args)
        through = await measured(gateway, "through gateway", gateway_me, token, args)
        return direct, through
    finally:
        stop(gateway)
        stop(users)


def report(direct: Result, through: Result, args: argparse.Namespace) -> float:
    ratio = through.requests_per_second / direct.requests_per_second
    print(
        f"\nGET /api/users/me, {args.connections} connections, {args.duration} s each "
        f"({direct.tool})"
    )
    print(
        f"{'':<18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}{'errors':>8}"
        f"{'CPU µs/req':>12}"
    )
    for r in (direct, through):
        cpu = f"{r.cpu_us:>12.0f}" if r.cpu_us is not None else f"{'–':>12}"
        print(
            f"{r.name:<18}{r.requests_per_second:>10.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}"
            f"{r.requests:>10}{r.errors:>8}{cpu}"
        )
    print("(CPU µs/req: the users process for the direct run, the gateway's alone through it)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    verdict = "ok" if ratio >= args.min_ratio else "BELOW TARGET"
    print(f"gateway / direct throughput: {ratio:.0%} (target >= {args.min_ratio:.0%}) {verdict}")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per side")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--min-ratio", type=float, default=0.5)
    parser.add_argument("--python", action="store_true", help="use the aiohttp load generator")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the ratio is below --min-ratio or requests failed",
    )
    args = parser.parse_args()
    args.wrk = (
        None
        if args.python
        else shutil.which("wrk") or ("/usr/bin/wrk" if Path("/usr/bin/wrk").exists() else None)
    )
    workdir = Path(tempfile.mkdtemp(prefix="streamia-bench-"))
    try:
        direct, through = asyncio.run(bench(args, workdir))
        ratio = report(direct, through, args)
    except BaseException:
        for log in sorted(workdir.glob("*.log")):
            print(
                f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr
            )
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    failed = direct.errors or through.errors or ratio < args.min_ratio
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
