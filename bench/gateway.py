#!/usr/bin/env python3
"""The gateway side by side with Express Gateway and nginx on one static upstream (issue 16).

    .venv/bin/python bench/gateway.py [--duration 8] [--connections 32] [--skip-express]

Starts, on free loopback ports, in one run:

1. A static upstream: nginx (one worker) answering `GET /api/movies/bench` with a small JSON.
2. In front of it, each loaded in turn with wrk on that same route:
   - nginx `proxy_pass` with upstream keepalive (the cost of a proxy hop),
   - the Streamia gateway (`streamia serve gateway`, shipped configuration: rate limits on,
     JWT, CORS, breaker, request ids, access log, tracing with no OTLP endpoint), with its
     limits in memory, then with them in Redis (127.0.0.1:6379, a throwaway namespace whose
     keys are deleted afterwards),
   - Express Gateway 1.16.11 (the seed's choice: proxy + rate-limit policies), installed
     with npm into ~/.cache/streamia-bench when Node is present, skipped otherwise.
3. The real routes: `GET /api/movies/:id` (movies service) and the authenticated
   `GET /api/users/me` (users service), straight at the service and through the gateway
   (embedded adapters, one temp data dir).
4. The Streamia gateway paced at about half its measured capacity (wrk with a Lua `delay()`):
   its p99 there and the rate achieved.

Prints req/s, p50/p99, the CPU each server spent per request (user + system time of its
process group, from /proc) and the ratios against Express Gateway and nginx. Rate limits are
on everywhere: wrk spreads the requests over 20,000 client addresses (X-Forwarded-For, which
the gateways here believe from loopback), so the gateway keeps its shipped 300/minute per IP
and nothing is refused; Express Gateway counts every request against one key with a limit
raised past the load. Needs wrk and nginx.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import _wrk
import httpx

ROOT = Path(__file__).resolve().parents[1]
STREAMIA = Path(sys.executable).parent / "streamia"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
EXPRESS_GATEWAY = "express-gateway@1.16.11"
EG_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "streamia-bench"
REDIS_URL = os.environ.get("STREAMIA_BENCH_REDIS", "redis://127.0.0.1:6379/0")
PASSWORD = "Str0ng!Passw0rd"
ROUTE = "/api/movies/bench"
STATIC_BODY = '{"data":{"id":"bench","title":"Bench"}}'
# wrk sends each request as one of this many clients (X-Forwarded-For, believed from loopback):
# the gateway keeps its shipped per-IP limit (300/minute) and none of them reaches it, as with
# real traffic. A single client under a limit raised past the load would measure the moving
# window at a size no client reaches (one entry per request in the window).
CLIENTS = 20_000
# Before each measured run: Express Gateway's JIT needs a few thousand requests (with 2 s it
# measured anywhere from 212 to 957 req/s in runs minutes apart).
WARM_UP_SECONDS = 4

# Target ratios of issue 16, point 1.
TARGET_VS_EXPRESS = 2.5
TARGET_VS_NGINX = 0.15
TARGET_CPU_US = 150
TARGET_HALF_P99_MS = 5.0


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us: float | None = None


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in group `pgid` (nginx's master and
    worker, node, uvicorn): unlike throughput, it hardly moves with the machine's load."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class Processes:
    """Every server this run starts, each in its own process group; `stop_all` ends them."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd=None):
        log = (self.work / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # nginx's and node's children die with their group; make sure of it.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc in self.started:
            self.started.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-1500:]}"
            for log in sorted(self.work.glob("*.log"))
        )


def wait_until(url: str, proc: subprocess.Popen, ok: Callable[[int], bool] = lambda s: s == 200):
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server behind {url} exited (code {proc.returncode})")
        with suppress(httpx.HTTPError):
            if ok(httpx.get(url, timeout=2).status_code):
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in 90 s")


def nginx(procs: Processes, name: str, server: str) -> subprocess.Popen:
    """nginx with one worker and the `server { }` block given."""
    work = procs.work / name
    work.mkdir()
    conf = work / "nginx.conf"
    conf.write_text(f"""
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
    {server}
}}
""")
    return procs.start(name, [NGINX, "-p", str(work), "-c", str(conf), "-e", str(work / "e.log")])


def streamia(procs: Processes, name: str, service: str, port: int, env: dict[str, str]):
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STREAMIA_") or k == "STREAMIA_ENVIRONMENT"
    }
    full.update(
        {
            "STREAMIA_HOST": "127.0.0.1",
            "STREAMIA_PORT": str(port),
            "STREAMIA_LOG_LEVEL": "WARNING",
            **env,
        }
    )
    return procs.start(name, [str(STREAMIA), "serve", service], env=full, cwd=ROOT)


# -- Express Gateway ---------------------------------------------------------------------------


def install_express_gateway() -> Path | None:
    """express-gateway@1.16.11 installed once into the bench cache; None without node/npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        print("Express Gateway: skipped (node or npm is not installed)")
        return None
    home = EG_CACHE / EXPRESS_GATEWAY.replace("@", "-")
    if not (home / "node_modules" / "express-gateway" / "package.json").exists():
        print(f"installing {EXPRESS_GATEWAY} into {home} (npm, about a minute) ...", flush=True)
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
                ".",
                EXPRESS_GATEWAY,
            ],
            cwd=home,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return home


def express_gateway(procs: Processes, home: Path, port: int, upstream: str) -> subprocess.Popen:
    """Express Gateway with the seed's policies on the route: rate-limit, then proxy."""
    config = procs.work / "express-gateway"
    shutil.copytree(home / "node_modules/express-gateway/lib/config/models", config / "models")
    # delayMs 0: v1.16's rate-limit otherwise delays every request by a second.
    (config / "gateway.config.yml").write_text(f"""
http:
  port: {port}
apiEndpoints:
  movies:
    host: '*'
    paths: ['/api/movies/*']
serviceEndpoints:
  upstream:
    url: '{upstream}'
policies: [proxy, rate-limit]
pipelines:
  movies:
    apiEndpoints: [movies]
    policies:
      - rate-limit:
          - action: {{max: 100000000, windowMs: 60000, delayMs: 0}}
      - proxy:
          - action: {{serviceEndpoint: upstream}}
""")
    (config / "system.config.yml").write_text("""
db:
  redis: {emulate: true, namespace: EG}
crypto: {cipherKey: benchKey, algorithm: aes256, saltRounds: 10}
session: {secret: bench, resave: false, saveUninitialized: false}
accessTokens: {timeToExpiry: 7200000}
refreshTokens: {timeToExpiry: 7200000}
authorizationCodes: {timeToExpiry: 300000}
""")
    script = f"require('express-gateway')().load({str(config)!r}).run()"
    env = {**os.environ, "LOG_LEVEL": "warn"}
    return procs.start("express-gateway", ["node", "-e", script], env=env, cwd=home)


# -- the real routes ---------------------------------------------------------------------------


async def seed_movie(data_dir: Path) -> str:
    """One movie in the movies service's SQLite database, written before the service starts."""
    from sqlalchemy import insert

    from streamia_kit.db import Database
    from streamia_kit.migrations import migrate
    from streamia_movies.app import MIGRATIONS
    from streamia_movies.movies.models import Movie
    from streamia_movies.movies.search import fold, search_document

    url = f"sqlite+aiosqlite:///{data_dir / 'movies.sqlite'}"
    await migrate(MIGRATIONS, url)
    movie_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    title, description = "Bench Mark", "A movie the gateway benchmark reads over and over."
    db = Database(url)
    try:
        async with db.transaction() as session:
            await session.execute(
                insert(Movie),
                [
                    dict(
                        id=movie_id,
                        title=title,
                        description=description,
                        category="Drama",
                        provider="external",
                        video_url=f"https://cdn.example.com/{movie_id}.mp4",
                        rating_average=0.0,
                        rating_count=0,
                        rating_version=0.0,
                        title_key=fold(title),
                        category_key=fold("Drama"),
                        search_text=search_document(title, description),
                        created_at=now,
                        updated_at=now,
                    )
                ],
            )
    finally:
        await db.dispose()
    return movie_id


def register(users_url: str) -> str:
    body = {
        "firstName": "Bench",
        "lastName": "Mark",
        "age": 30,
        "email": f"bench-{uuid.uuid4().hex[:10]}@example.com",
        "password": PASSWORD,
        "confirmPassword": PASSWORD,
    }
    resp = httpx.post(users_url + "/api/users/register", json=body, timeout=30)
    if resp.status_code != 201:
        raise SystemExit(f"registration failed: {resp.status_code} {resp.text}")
    return resp.json()["token"]


def clear_redis_namespace(namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# -- load --------------------------------------------------------------------------------------


def wrk(
    name: str,
    url: str,
    args: argparse.Namespace,
    *,
    pgid: int | None = None,
    headers: tuple[str, ...] = (),
    script: Path | None = None,
    connections: int | None = None,
    duration: int | None = None,
) -> Result:
    """One wrk run; with `pgid`, the CPU that process group spent per request."""
    before = group_cpu_seconds(pgid) if pgid else 0.0
    done = _wrk.run(
        url,
        seconds=duration or args.duration,
        connections=connections or args.connections,
        script=script or args.clients_script,
        headers=headers,
    )
    after = group_cpu_seconds(pgid) if pgid else 0.0
    return Result(
        name,
        done.rps,
        done.p50_ms,
        done.p99_ms,
        done.requests,
        done.non_2xx + done.socket_errors,
        (after - before) / done.requests * 1e6 if pgid and done.requests else None,
    )


def clients_script(work: Path, rate: float | None = None, connections: int = 1) -> Path:
    """A wrk script sending each request from the next of CLIENTS addresses; with `rate`, it
    also spaces each connection's requests so that all together offer about `rate` req/s
    (random gaps averaging the interval, so the connections do not lockstep)."""
    lua = f"""
local n = 0
function request()
  n = n + 1
  local i = n % {CLIENTS}
  wrk.headers["X-Forwarded-For"] = "10." .. math.floor(i / 250) .. "." .. (i % 250) .. ".1"
  return wrk.format()
end
"""
    name = "clients.lua"
    if rate is not None:
        gap_ms = max(1, round(connections * 1000 / rate))
        lua += "math.randomseed(os.time())\n"
        lua += f"function delay() return math.random(0, {2 * gap_ms}) end\n"
        name = "paced.lua"
    script = work / name
    script.write_text(lua)
    return script


# -- the run -----------------------------------------------------------------------------------


def bench(args: argparse.Namespace, procs: Processes) -> list[tuple[str, list[Result]]]:
    """Each server under test runs alone with the upstream: started, warmed up, loaded, stopped."""
    work = procs.work
    upstream_port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    users_url = f"http://127.0.0.1:{free_port()}"
    data_dir = work / "data"
    data_dir.mkdir()
    namespace = f"bench-{uuid.uuid4().hex[:8]}:"
    common = {"STREAMIA_DATA_DIR": str(data_dir), "STREAMIA_USERS_URL": users_url}
    # INFO: the gateway writes its access lines (to its log file here), as shipped; at
    # WARNING it would write none, and they cost a part of its CPU per request.
    gateway_env = {
        **common,
        "STREAMIA_TRUSTED_PROXIES": "127.0.0.1/32",
        "STREAMIA_LOG_LEVEL": "INFO",
    }
    args.clients_script = clients_script(work)
    eg_home = None if args.skip_express else install_express_gateway()

    static = nginx(
        procs,
        "upstream",
        f"server {{ listen 127.0.0.1:{upstream_port}; default_type application/json;"
        f" location / {{ return 200 '{STATIC_BODY}'; }} }}",
    )
    wait_until(upstream + ROUTE, static)

    def nginx_proxy(port: int) -> subprocess.Popen:
        return nginx(
            procs,
            "nginx-proxy",
            f"upstream static {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}"
            f" server {{ listen 127.0.0.1:{port}; location / {{"
            " proxy_pass http://static; proxy_http_version 1.1;"
            ' proxy_set_header Connection ""; } }',
        )

    def gateway(name: str, extra: dict[str, str]) -> Callable[[int], subprocess.Popen]:
        env = {**gateway_env, "STREAMIA_MOVIES_URL": upstream, **extra}
        return lambda port: streamia(procs, name, "gateway", port, env)

    redis_env = {"STREAMIA_REDIS_URL": REDIS_URL, "STREAMIA_NAMESPACE": namespace}
    peers: list[tuple[str, Callable[[int], subprocess.Popen] | None, str]] = [
        ("nginx proxy_pass (keepalive)", nginx_proxy, ROUTE),
        ("Streamia gateway, limits in memory", gateway("gateway-memory", {}), "/health"),
        (
            "Streamia gateway, limits in Redis",
            None if args.skip_redis else gateway("gateway-redis", redis_env),
            "/health",
        ),
        (
            f"Express Gateway {EXPRESS_GATEWAY.split('@')[1]}",
            (lambda port: express_gateway(procs, eg_home, port, upstream)) if eg_home else None,
            ROUTE,
        ),
    ]
    print(f"loading each for {args.duration} s, wrk -t1 -c{args.connections} ...", flush=True)
    side = [wrk("static upstream (nginx) direct", upstream + ROUTE, args, pgid=static.pid)]
    upstream_cpu: dict[str, float] = {}
    paced: Result | None = None
    for name, start, ready in peers:
        if start is None:
            continue
        port = free_port()
        proc = start(port)
        try:
            wait_until(f"http://127.0.0.1:{port}{ready}", proc)
            url = f"http://127.0.0.1:{port}{ROUTE}"
            wrk("warm-up", url, args, duration=WARM_UP_SECONDS)
            before = group_cpu_seconds(static.pid)
            side.append(wrk(name, url, args, pgid=proc.pid))
            upstream_cpu[name] = (group_cpu_seconds(static.pid) - before) / side[-1].requests * 1e6
            if name == "Streamia gateway, limits in memory":
                if "ratelimit-limit" not in httpx.get(url, timeout=10).headers:
                    raise SystemExit("the gateway under test sent no RateLimit-* headers")
                rate = side[-1].rps / 2
                paced = wrk(
                    f"Streamia gateway at ~{rate:.0f} req/s offered",
                    url,
                    args,
                    pgid=proc.pid,
                    script=clients_script(work, rate, args.connections),
                )
        finally:
            procs.stop(proc)
    if not args.skip_redis:
        clear_redis_namespace(namespace)
    assert paced is not None

    movie_id = asyncio.run(seed_movie(data_dir))
    users_port = int(users_url.rsplit(":", 1)[1])
    movies_port, real_gateway_port = free_port(), free_port()
    users = streamia(procs, "users", "users", users_port, common)
    movies = streamia(procs, "movies", "movies", movies_port, common)
    real_gateway = gateway(
        "gateway-real", {"STREAMIA_MOVIES_URL": f"http://127.0.0.1:{movies_port}"}
    )(real_gateway_port)
    for port, proc in [
        (users_port, users),
        (movies_port, movies),
        (real_gateway_port, real_gateway),
    ]:
        wait_until(f"http://127.0.0.1:{port}/health", proc)
    auth = (f"Authorization: Bearer {register(users_url)}",)
    real: list[Result] = []
    for name, path, headers, service_port, service in [
        ("GET /api/movies/:id", f"/api/movies/{movie_id}", (), movies_port, movies),
        ("GET /api/users/me", "/api/users/me", auth, users_port, users),
    ]:
        for label, port, proc in [
            ("direct", service_port, service),
            ("through gateway", real_gateway_port, real_gateway),
        ]:
            url = f"http://127.0.0.1:{port}{path}"
            wrk("warm-up", url, args, headers=headers, duration=WARM_UP_SECONDS)
            real.append(wrk(f"{name} {label}", url, args, headers=headers, pgid=proc.pid))
    args.upstream_cpu = upstream_cpu
    return [
        (f"GET {ROUTE}, static nginx upstream", side),
        (
            "real routes, embedded adapters (CPU: the service direct, the gateway through it)",
            real,
        ),
        ("half capacity: wrk paced with a Lua delay()", [paced]),
    ]


def report(tables: list[tuple[str, list[Result]]], args: argparse.Namespace) -> bool:
    header = f"{'':<48}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}{'CPU µs/req':>11}"
    for title, results in tables:
        print(f"\n{title}\n{header}")
        for r in results:
            cpu = f"{r.cpu_us:>11.0f}" if r.cpu_us is not None else f"{'–':>11}"
            print(f"{r.name:<48}{r.rps:>9.0f}{r.p50_ms:>8.2f}{r.p99_ms:>8.2f}{r.errors:>7}{cpu}")
    side = {r.name: r for r in tables[0][1]}
    ours = side["Streamia gateway, limits in memory"]
    nginx_proxy = side["nginx proxy_pass (keepalive)"]
    express = next((r for n, r in side.items() if n.startswith("Express")), None)
    paced = tables[2][1][0]
    print(
        "\nupstream nginx CPU µs per proxied request: "
        + ", ".join(f"{n}: {c:.0f}" for n, c in args.upstream_cpu.items())
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    checks = [
        ("gateway / nginx proxy_pass", ours.rps / nginx_proxy.rps, TARGET_VS_NGINX, "{:.1%}", True),
        ("gateway CPU µs per request", ours.cpu_us or 0, TARGET_CPU_US, "{:.0f}", False),
        (
            f"p99 ms at half capacity (achieved {paced.rps:.0f} req/s)",
            paced.p99_ms,
            TARGET_HALF_P99_MS,
            "{:.2f}",
            False,
        ),
    ]
    if express is not None:
        checks.insert(
            0,
            (
                "gateway / Express Gateway",
                ours.rps / express.rps,
                TARGET_VS_EXPRESS,
                "{:.2f}×",
                True,
            ),
        )
    met = True
    for label, value, target, fmt, higher in checks:
        ok = value >= target if higher else value <= target
        met &= ok
        sign = ">=" if higher else "<="
        verdict = "ok" if ok else "BELOW TARGET"
        print(f"{label}: {fmt.format(value)} (target {sign} {fmt.format(target)}) {verdict}")
    errors = sum(r.errors for _, results in tables for r in results)
    if errors:
        print(f"{errors} requests failed")
    return met and not errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--skip-express", action="store_true", help="no Express Gateway")
    parser.add_argument("--skip-redis", action="store_true", help="no Redis-backed gateway")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    for tool in (_wrk.WRK, NGINX):
        if not Path(tool).exists():
            raise SystemExit(f"{tool} is not installed (apt-get install wrk nginx-light)")
    if not STREAMIA.exists():
        raise SystemExit(f"{STREAMIA} not found: run `python3 run.py --help` first")
    work = Path(tempfile.mkdtemp(prefix="streamia-bench-gateway-"))
    work.chmod(0o755)  # nginx workers may run as an unprivileged user
    procs = Processes(work)
    try:
        met = report(bench(args, procs), args)
    except BaseException:
        procs.stop_all()
        print(procs.logs(), file=sys.stderr)
        raise
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
