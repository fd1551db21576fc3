"""The services of the platform and how to run them: embedded (one process) or one each."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import logging
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import structlog
import uvicorn

# The services in start order (only for readable logs: each tolerates the others being down).
from streamia import ALL_SERVICES as ALL_SERVICES
from streamia import HTTP_SERVICES as HTTP_SERVICES
from streamia.console import Banner, StartupConsole
from streamia_kit.bus import Subscription
from streamia_kit.config import ServiceSettings
from streamia_kit.files import private_dir
from streamia_kit.http_protocol import CoalescingHttpToolsProtocol
from streamia_kit.infra import Infrastructure

log = structlog.get_logger("streamia.platform")


@dataclass(frozen=True)
class ServiceModule:
    name: str
    app: ModuleType
    settings_cls: type[ServiceSettings]


def load(name: str) -> ServiceModule | None:
    """Import a service's app and settings; None while that service is not built yet."""
    try:
        app = importlib.import_module(f"streamia_{name}.app")
        config = importlib.import_module(f"streamia_{name}.config")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(f"streamia_{name}"):
            return None
        raise
    settings_cls = next(
        obj
        for obj in vars(config).values()
        if isinstance(obj, type)
        and issubclass(obj, ServiceSettings)
        and obj is not ServiceSettings
        and getattr(obj, "service_name", None) == name
    )
    return ServiceModule(name, app, settings_cls)


def available() -> list[ServiceModule]:
    return [m for m in (load(n) for n in ALL_SERVICES) if m is not None]


def subscriptions() -> list[Subscription]:
    """Every consumer queue of the platform (`<consumer>.<event type>`), as the services'
    `create_app` subscribe them, sorted by queue name. Builds the apps; connects nothing."""
    infra = Infrastructure.from_settings(ServiceSettings(amqp_url=None, redis_url=None))
    for module in available():
        if module.name != "gateway":
            module.app.create_app(module.settings_cls(), infra=infra, manage_lifecycle=False)
    return sorted(infra.bus.subscriptions.values(), key=lambda sub: sub.queue)


def openapi() -> dict[str, Any]:
    """The gateway's merged OpenAPI document, from the services' own apps as `/openapi.json`
    serves it (in the gateway's upstream order). Builds the apps; connects nothing."""
    from streamia_gateway.config import UPSTREAMS, GatewaySettings
    from streamia_gateway.docs import merge_specs
    from streamia_gateway.routing import Router

    infra = Infrastructure.from_settings(ServiceSettings(amqp_url=None, redis_url=None))
    specs = {}
    for name in UPSTREAMS:
        module = load(name)
        if module is not None:
            app = module.app.create_app(module.settings_cls(), infra=infra, manage_lifecycle=False)
            specs[name] = app.openapi()
    router = Router(GatewaySettings())
    return merge_specs(specs, lambda path: router.match(path) is not None)


def openapi_json() -> str:
    """`openapi()` as the committed `docs/openapi.json` holds it."""
    return json.dumps(openapi(), indent=2, ensure_ascii=False) + "\n"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the embedded runner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn_config(
    app: Any, host: str, port: int, lifespan: Literal["auto", "on", "off"]
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan=lifespan,
        access_log=False,
        log_config=None,
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,
        timeout_graceful_shutdown=5,
        # Longer than the gateway's pooled keep-alive (30 s): the proxy, not the service,
        # closes idle connections, so it never reuses one the service just closed (a 502).
        timeout_keep_alive=75,
        # The gateway alone decides which X-Forwarded-For to believe (STREAMIA_TRUSTED_PROXIES);
        # uvicorn's own handling would take a client's spoofed header from a trusted peer.
        proxy_headers=False,
    )


def build_embedded(
    overrides: dict[str, Any] | None = None,
) -> tuple[Infrastructure, list[tuple[str, Any, ServiceSettings]]]:
    """Every service's app, sharing one in-process bus, cache and revocation store."""
    overrides = overrides or {}
    base = ServiceSettings(**overrides)
    if base.amqp_url or base.redis_url:
        raise SystemExit(
            "embedded mode uses in-process adapters: unset STREAMIA_AMQP_URL/REDIS_URL"
        )
    private_dir(base.data_dir)
    infra = Infrastructure.from_settings(base)
    apps = []
    for module in available():
        settings = module.settings_cls(**overrides)
        if module.name == "gateway":
            app = module.app.create_app(settings, revocations=infra.revocations)
        else:
            app = module.app.create_app(settings, infra=infra, manage_lifecycle=False)
        apps.append((module.name, app, settings))
    return infra, apps


async def _seed_once(
    overrides: dict[str, Any] | None,
    apps: list[tuple[str, Any, ServiceSettings]],
    status: Callable[[str], None],
) -> None:
    """First start only: the demo catalogue is made while the platform already serves."""
    marker = apps[0][2].data_dir / ".demo-seeded"
    if marker.exists():
        return
    status("generating…")
    try:
        log.info("demo_seeded", summary=await seed_demo(overrides, apps))
    except Exception:  # a broken demo must not take the platform down
        log.exception("demo_seed_failed")
        status("failed (see the log; `streamia seed-demo` tries again)")
        return
    marker.write_text("seeded\n")
    status("ready")


def ports_in_use(apps: list[tuple[str, Any, ServiceSettings]]) -> list[tuple[str, int]]:
    """The servers whose address something else already listens on (another `up`, often)."""
    taken = []
    for name, _, settings in apps:
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As uvicorn binds: a port left in TIME_WAIT by a stopped `up` is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((settings.host, settings.bind_port))
            except OSError:
                taken.append((name, settings.bind_port))
    return taken


async def run_embedded(
    overrides: dict[str, Any] | None = None,
    seed: bool = False,
    console: StartupConsole | None = None,
    access_log: bool = True,
) -> None:
    """Every service in this process; `console` shows the start-up steps and the banner.
    With `seed`, the demo catalogue is generated in the background on the first start, its
    progress shown on the console. Without `access_log`, no line per HTTP request."""
    overrides = {**(overrides or {}), "access_log": access_log}
    infra, apps = build_embedded(overrides)
    addresses = [(settings.host, settings.bind_port) for _, _, settings in apps]
    if len(set(addresses)) < len(addresses):  # STREAMIA_PORT: the same port for every service
        await infra.close()
        raise SystemExit(
            "Cannot start: every service would listen on the same port. STREAMIA_PORT is for"
            " `streamia serve` (one service); `up` runs them all, each on its own port: unset"
            " it, and move a service with STREAMIA_<SERVICE>_URL (e.g."
            " STREAMIA_GATEWAY_URL=http://127.0.0.1:8090)."
        )
    taken = ports_in_use(apps)
    if taken:  # one clear line instead of eight bind errors and a traceback per server
        await infra.close()
        ports = ", ".join(f"{port} ({name})" for name, port in taken)
        raise SystemExit(
            f"Cannot start: {'ports' if len(taken) > 1 else 'port'} {ports}"
            f" {'are' if len(taken) > 1 else 'is'} already in use. Is Streamia already running?"
            " Stop it, or move a service with STREAMIA_<SERVICE>_URL (e.g."
            " STREAMIA_GATEWAY_URL=http://127.0.0.1:8090)."
        )
    if not access_log:  # the services' own request lines (the gateway's follow its setting)
        logging.getLogger("streamia.access").setLevel(logging.WARNING)
    step = console.step if console is not None else (lambda _: None)
    services = [app.state.service for name, app, _ in apps if name != "gateway"]
    for service in services:
        started = time.perf_counter()
        await service.start()
        step(f"{service.name}: database migrated ({time.perf_counter() - started:.1f} s)")
    await infra.start()
    settle_garbage_collector()
    seeding: asyncio.Task[None] | None = None
    servers = [
        _Server(
            _uvicorn_config(
                app, settings.host, settings.bind_port, "on" if name == "gateway" else "off"
            )
        )
        for name, app, settings in apps
    ]

    def stop(*_: Any) -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        tasks = [asyncio.create_task(s.serve()) for s in servers]
        while not all(s.started for s in servers):
            if any(t.done() for t in tasks):
                stop()
                break
            await asyncio.sleep(0.05)
        else:
            step(f"{len(servers)} services listening")
            if console is not None:
                console.banner(banner(apps, admin=seed))
            if seed:
                status = console.demo if console is not None else (lambda _: None)
                seeding = asyncio.create_task(_seed_once(overrides, apps, status))
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]
    finally:
        if seeding is not None:
            seeding.cancel()
            await asyncio.gather(seeding, return_exceptions=True)
        for service in reversed(services):
            await service.stop()
        await infra.close()


def banner(apps: list[tuple[str, Any, ServiceSettings]], admin: bool) -> Banner:
    """The addresses a person opens, and the demo admin's login when the demo is seeded."""
    urls = {
        name: f"http://{_browser_host(settings.host)}:{settings.bind_port}"
        for name, _, settings in apps
    }
    gateway = urls.pop("gateway", "")
    return Banner(
        web=f"{gateway}/",
        docs=f"{gateway}/docs",
        services=urls,
        data_dir=apps[0][2].data_dir.resolve(),
        admin=(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD) if admin else None,
    )


def _browser_host(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "127.0.0.1", "::") else host


async def serve_one(name: str, overrides: dict[str, Any] | None = None) -> None:
    """One service as its own process, configured by URLs, as a container runs it."""
    module = load(name)
    if module is None:
        raise SystemExit(f"unknown service {name!r}")
    settings = module.settings_cls(**(overrides or {}))
    app = module.app.create_app(settings)
    settle_garbage_collector()
    server = uvicorn.Server(_uvicorn_config(app, settings.host, settings.bind_port, "on"))
    await server.serve()


# The collector's young-generation threshold in a serving process (CPython's is 700). At
# 700 the playback service collected every ~5 progress writes and, through the older
# generations, walked its long-lived objects every ~1,000 (~12 ms each): 68-83 us of CPU a
# write, ~15 % of it. Nearly everything a request allocates is freed by reference counting
# anyway; the collector is there for cycles, and still finds them at 20,000.
GC_YOUNG_THRESHOLD = 20_000


def settle_garbage_collector() -> None:
    """Set the garbage collector up for serving, once startup has built what the process keeps.

    Modules, settings and adapters (~125,000 objects in the gateway) live as long as the
    process, yet every full collection walked them: 72 ms of CPU in the gateway under load,
    a latency spike whenever one ran; about 0 once they are frozen. Then the young
    generation's threshold is raised (GC_YOUNG_THRESHOLD).
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


DEMO_ADMIN_EMAIL = "admin@streamia.dev"
DEMO_ADMIN_PASSWORD = "Admin!2345"


async def seed_demo(
    overrides: dict[str, Any] | None = None,
    apps: list[tuple[str, Any, ServiceSettings]] | None = None,
) -> str:
    """An admin account plus the movie service's demo catalogue (videos and subtitles)."""
    owned = apps is None
    if apps is None:
        apps = []
        for name in ("users", "movies"):
            module = load(name)
            if module is not None:
                settings = module.settings_cls(**(overrides or {}))
                apps.append((name, module.app.create_app(settings), settings))
        for _, app, _ in apps:
            await app.state.service.start()
    lines = []
    try:
        by_name = {name: (app, settings) for name, app, settings in apps}
        if "users" in by_name:
            users_app = by_name["users"][0]
            async with users_app.state.service.db.transaction() as session:
                await users_app.state.users.create_admin(
                    session, DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, "Admin", "Streamia"
                )
            # The summary goes to the JSON log: the password only ever reaches a person (the
            # banner, `streamia seed-demo`), never a log store.
            lines.append(f"Demo admin: {DEMO_ADMIN_EMAIL}")
        if "movies" in by_name:
            demo = importlib.import_module("streamia_movies.demo")
            movies_app, movies_settings = by_name["movies"]
            lines.append(await demo.seed_demo(movies_app))
        for name, app, _ in apps:
            if name != "gateway":
                await app.state.service.relay.drain()
    finally:
        if owned:
            for _, app, _ in apps:
                await app.state.service.stop()
    return "\n".join(lines)


def env_table() -> str:
    """Markdown table of every STREAMIA_* variable: default, who reads it, what it does."""
    from pydantic_core import PydanticUndefined

    base_fields = set(ServiceSettings.model_fields)
    rows: dict[str, tuple[str, str, list[str]]] = {}
    classes: list[tuple[str, type[ServiceSettings]]] = [("all", ServiceSettings)]
    classes += [(m.name, m.settings_cls) for m in available()]
    for owner, cls in classes:
        for name, field in cls.model_fields.items():
            if owner != "all" and name in base_fields:
                continue
            var = f"STREAMIA_{name.upper()}"
            default = field.default
            if default is PydanticUndefined or default is None:
                shown = "–" if field.default_factory is None else "(computed)"
            elif isinstance(default, list | tuple):
                joined = ",".join(map(str, default))
                shown = f"`{joined}`" if len(joined) <= 60 else f"({len(default)} entries)"
            else:
                shown = f"`{default}`" if str(default) != "" else "(empty)"
            if name.endswith(("password", "secret", "api_key", "private_key")) and shown not in (
                "–",
                "(empty)",
            ):
                shown = "(development default)"
            description = (field.description or "").replace("|", "\\|")
            if var in rows:
                rows[var][2].append(owner)
            else:
                rows[var] = (shown, description, [owner])
    lines = ["| variable | default | used by | meaning |", "|---|---|---|---|"]
    for var, (shown, description, owners) in rows.items():
        lines.append(f"| `{var}` | {shown} | {', '.join(owners)} | {description} |")
    return "\n".join(lines)
