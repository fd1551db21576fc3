"""What every service is made of: settings, own database, outbox/inbox, bus, auth, app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import MetaData

from streamia_kit import openapi
from streamia_kit.api_docs import docs_router
from streamia_kit.auth import CachedTokenVerifier, JwksKeys, KeySource, TokenVerifier
from streamia_kit.bus import EventBus
from streamia_kit.cache import Cache
from streamia_kit.config import ServiceSettings
from streamia_kit.db import Database, ensure_database
from streamia_kit.deadlines import DeadlineMiddleware
from streamia_kit.errors import install_error_handlers
from streamia_kit.events import Event
from streamia_kit.idempotency import IdempotencyMiddleware
from streamia_kit.infra import Infrastructure
from streamia_kit.logging import configure_logging
from streamia_kit.messaging import (
    BatchEventHandler,
    EventHandler,
    Inbox,
    Outbox,
    OutboxRelay,
    idempotent_handler,
)
from streamia_kit.metrics import BacklogSampler, service_registry
from streamia_kit.middleware import (
    BodyLimitMiddleware,
    RequestContextMiddleware,
    TrailingSlashMiddleware,
)
from streamia_kit.migrations import migrate
from streamia_kit.telemetry import Tracing

E = TypeVar("E", bound=Event)


class Service:
    """Wires one service's adapters; `create_app` is the only place that builds them."""

    def __init__(
        self,
        settings: ServiceSettings,
        metadata: MetaData,
        migrations: Path,
        infra: Infrastructure | None = None,
        keys: KeySource | None = None,
    ) -> None:
        configure_logging(settings.log_level, settings.log_format)
        self.name = settings.service_name
        self.settings = settings
        # This service's own provider: in embedded mode each span still names its service.
        self.tracing = Tracing.of(self.name, settings.otlp_endpoint, settings.trace_sample_ratio)
        self.owns_infra = infra is None
        self.infra = infra or Infrastructure.from_settings(settings)
        if self.owns_infra and self.infra.redis is not None:
            self.tracing.instrument_redis(self.infra.redis)
        self.db = Database(
            settings.resolved_database_url(),
            pool_size=settings.database_pool_size,
            statement_timeout=settings.statement_timeout,
            pool_timeout=settings.pool_timeout,
        )
        self.tracing.instrument_engine(self.db.engine)
        if self.db.read_engine is not self.db.engine:  # SQLite's readers
            self.tracing.instrument_engine(self.db.read_engine)
        self.metadata = metadata
        self.migrations = migrations
        self.outbox = Outbox(metadata.tables["outbox"], source=f"streamia/{self.name}")
        self.inbox = Inbox(metadata.tables["inbox"])
        self.relay = OutboxRelay(
            self.db,
            self.infra.bus,
            metadata.tables["outbox"],
            settings.outbox_poll_seconds,
            tracing=self.tracing,
            service=self.name,
        )
        self.db.after_outbox_commit.append(self.relay.wake)
        self.backlog = BacklogSampler(self.name, self.db, metadata.tables["outbox"], self.bus)
        # Infrastructure handed in means other services share this process (embedded mode):
        # its registry is theirs too, so /metrics serves only this service's series.
        self.metrics_registry = REGISTRY if self.owns_infra else service_registry(self.name)
        # Every request carries a token the gateway has just verified: the Ed25519 check is
        # remembered (revocation is still checked each time, against the in-memory mirror),
        # ~0.3 ms of CPU a request.
        self.verifier = CachedTokenVerifier(
            TokenVerifier(
                keys or JwksKeys(f"{settings.users_url}/.well-known/jwks.json"),
                self.infra.revocations,
            ),
            self.infra.revocations,
        )
        self.on_start: list[Callable[[], Awaitable[None]]] = []
        self.on_stop: list[Callable[[], Awaitable[None]]] = []
        self.ready_checks: dict[str, Callable[[], Awaitable[bool]]] = {
            "database": self.db.ping,
            "bus": self.infra.bus.ping,
            "cache": self.infra.cache.ping,
            # Background tasks (each under a kit `Supervisor`): false while one waits to be
            # restarted after it failed.
            "outbox_relay": self.relay.supervisor.ping,
        }
        self.started_at: float | None = None

    @property
    def bus(self) -> EventBus:
        return self.infra.bus

    @property
    def cache(self) -> Cache:
        return self.infra.cache

    def consume(
        self,
        event_cls: type[E],
        handler: EventHandler[E],
        many: BatchEventHandler[E] | None = None,
    ) -> None:
        """Subscribe `handler(session, event, envelope)` behind the idempotent inbox; with
        `many(session, [(event, envelope), ...])`, events delivered together are applied in
        one call (it must do what `handler` would do for each, in order)."""
        self.infra.bus.subscribe(
            self.name,
            event_cls.type,
            idempotent_handler(
                self.db, self.inbox, self.name, event_cls, handler, many, tracing=self.tracing
            ),
        )

    async def start(self) -> None:
        """Create and migrate the database, start the relay, run service start hooks."""
        url = self.settings.resolved_database_url()
        if self.settings.create_database:
            await ensure_database(url)
        await migrate(self.migrations, url)
        for hook in self.on_start:
            await hook()
        self.relay.start()
        if self.owns_infra:
            await self.infra.start()
        self.backlog.start()
        self.started_at = time.time()

    async def stop(self) -> None:
        for hook in self.on_stop:
            await hook()
        await self.backlog.stop()
        await self.relay.stop()
        if self.owns_infra:
            await self.infra.close()
        await self.db.dispose()
        await asyncio.to_thread(self.tracing.flush)

    def create_app(
        self,
        title: str,
        routers: Sequence[APIRouter],
        description: str = "",
        body_limit_exempt: Callable[[str], bool] | None = None,
        manage_lifecycle: bool = True,
    ) -> FastAPI:
        """A FastAPI app with the kit's error shapes, middleware and operations endpoints."""

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            if manage_lifecycle:
                await self.start()
            try:
                yield
            finally:
                if manage_lifecycle:
                    await self.stop()

        app = FastAPI(
            title=title,
            description=description,
            version="0.1.0",
            lifespan=lifespan,
            # RequestContextMiddleware opens the request's server span (continuing the
            # caller's traceparent); FastAPI's own would be a second span per request. Its
            # metrics and logs are the kit's (Prometheus, the JSON lines): with them on,
            # FastAPI asks OpenTelemetry for each provider on every request (2.5 us).
            telemetry={"tracing": False, "metrics": False, "logs": False},
            redirect_slashes=False,  # TrailingSlashMiddleware serves both forms instead
            docs_url=None,  # docs_router(): Swagger UI served offline
            redoc_url=None,
        )
        app.state.service = self
        app.openapi = lambda: openapi.document(app)  # type: ignore[method-assign]
        install_error_handlers(app)
        for router in routers:
            app.include_router(router)
        app.include_router(self._operations_router())
        app.include_router(docs_router(title))
        app.add_middleware(
            BodyLimitMiddleware,
            max_bytes=self.settings.max_json_body_bytes,
            exempt=body_limit_exempt,
        )
        app.add_middleware(IdempotencyMiddleware, service=self)
        # Outside the idempotency check: its store and token lookups count against the
        # deadline too, and a claim whose request is cancelled at the deadline is released.
        app.add_middleware(
            DeadlineMiddleware,
            service=self.name,
            margin_seconds=self.settings.deadline_margin_seconds,
        )
        app.add_middleware(RequestContextMiddleware, service=self.name, tracing=self.tracing)
        app.add_middleware(TrailingSlashMiddleware)
        return app

    def _operations_router(self) -> APIRouter:
        router = APIRouter(tags=["operations"])

        @router.get("/health")
        async def health() -> dict[str, Any]:
            return {"status": "ok", "service": self.name}

        @router.get("/ready")
        async def ready() -> Response:
            names = list(self.ready_checks)
            results = await asyncio.gather(*(_probe(self.ready_checks[n]) for n in names))
            checks = dict(zip(names, results, strict=True))
            ok = all(checks.values()) and self.started_at is not None
            return JSONResponse(
                {"status": "ready" if ok else "not_ready", "service": self.name, "checks": checks},
                status_code=200 if ok else 503,
            )

        @router.get(
            "/metrics",
            response_class=Response,
            responses={
                200: {
                    "description": "Prometheus text exposition format",
                    "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
                }
            },
        )
        async def metrics() -> Response:
            return Response(generate_latest(self.metrics_registry), media_type=CONTENT_TYPE_LATEST)

        return router


# Each /ready check answers within this, so a black-holed dependency reads as down, fast.
READY_CHECK_SECONDS = 0.8
_abandoned: set[asyncio.Future[bool]] = set()  # timed-out checks, cancelled in the background


async def _probe(check: Callable[[], Awaitable[bool]]) -> bool:
    task = asyncio.ensure_future(check())
    await asyncio.wait({task}, timeout=READY_CHECK_SECONDS)
    if not task.done():
        # Not awaited: a driver may take seconds more to give up a hung connection.
        task.cancel()
        _abandoned.add(task)
        task.add_done_callback(_abandoned.discard)
        return False
    return not task.cancelled() and task.exception() is None and bool(task.result())
