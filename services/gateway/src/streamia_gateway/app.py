"""The API gateway as a raw ASGI app: `create_app` wires adapters, `Gateway` runs the pipeline."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis
import structlog

from streamia_gateway.access_log import AccessLog
from streamia_gateway.client_ip import ClientIp
from streamia_gateway.config import GatewaySettings
from streamia_gateway.cors import CorsPolicy
from streamia_gateway.docs import ApiDocs
from streamia_gateway.exchange import Exchange, Receive, Scope, Send
from streamia_gateway.login import LoginLimiter
from streamia_gateway.metrics import GatewayMetrics
from streamia_gateway.operations import Operations
from streamia_gateway.proxy import Proxy
from streamia_gateway.ratelimit import RateLimits, build_storage
from streamia_gateway.routing import Router
from streamia_gateway.tracing import EdgeTracing
from streamia_gateway.web import WebApp, wants_html
from streamia_kit.auth import (
    CachedTokenVerifier,
    Identity,
    JwksKeys,
    MemoryRevocationStore,
    RedisRevocationStore,
    RevocationStore,
    TokenVerifier,
)
from streamia_kit.breaker import CircuitBreaker
from streamia_kit.errors import Unauthorized
from streamia_kit.logging import configure_logging, new_request_id, request_id_var
from streamia_kit.middleware import OPERATIONS_PATHS
from streamia_kit.telemetry import Tracing, untraced

log = structlog.get_logger("streamia.gateway")

# The `route` label of every page of the web app (its client routes are the browser's business).
WEB_APP_ROUTE = "/{web_app}"
TOO_MANY_REQUESTS = "Too many requests, please try again later."
# A declared body over the route's limit is drained (so the client reads the 413) up to
# this size; past it the gateway answers and closes the connection instead.
_DRAIN_LIMIT = 16 * 1024 * 1024
# Where a client may still carry a stale token: a bad one is dropped, not refused, so a
# browser holding an expired token can still log in, register or reset its password.
_CREDENTIAL_PATHS = frozenset(
    {
        "/api/users/login",
        "/api/users/register",
        "/api/users/forgot-password",
        "/api/users/reset-password",
        "/.well-known/jwks.json",
    }
)


class Gateway:
    """The ASGI application over adapters `create_app` built; each pipeline step may answer."""

    def __init__(
        self,
        *,
        router: Router,
        cors: CorsPolicy,
        operations: Operations,
        web: WebApp,
        limits: RateLimits,
        verifier: CachedTokenVerifier,
        revocations: RevocationStore,
        logins: LoginLimiter,
        proxy: Proxy,
        breakers: dict[str, CircuitBreaker],
        metrics: GatewayMetrics,
        access_log: AccessLog | None,
        redis: aioredis.Redis | None,
        client_ip: ClientIp,
        tracing: EdgeTracing,
    ) -> None:
        self.router = router
        self.cors = cors
        self.operations = operations
        self.web = web
        self.limits = limits
        self.verifier = verifier
        self.revocations = revocations
        self.logins = logins
        self.proxy = proxy
        self.breakers = breakers
        self.metrics = metrics
        self._access_log = access_log
        self._redis = redis
        self._client_ip = client_ip
        self._tracing = tracing

    # ASGI entry point -------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """Open the pooled upstream client and start syncing the revocations (idempotent;
        both need the running loop)."""
        self.proxy.open()
        await self.revocations.start()

    async def shutdown(self) -> None:
        """Close the upstream client and the Redis connections."""
        await self.proxy.close()
        await self.revocations.close()
        await self.limits.close()
        if self._redis is not None:
            await self._redis.aclose()
        await asyncio.to_thread(self._tracing.tracing.flush)  # the last spans out
        if self._access_log is not None:
            self._access_log.flush()

    # One request ------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        ex = Exchange(scope, receive, send)
        ex.client_ip, ex.proxied = self._client_ip.resolve(ex.client_ip, scope["headers"])
        incoming = ex.headers.get(b"x-request-id")
        ex.request_id = new_request_id(incoming.decode("latin-1") if incoming else None)
        ex.extra.append((b"x-request-id", ex.request_id.encode()))
        token = request_id_var.set(ex.request_id)
        # Probes and scrapes are not traffic: no span, no metrics, no access line.
        traffic = ex.path not in OPERATIONS_PATHS
        span = span_token = None
        if traffic:
            span, span_token = self._tracing.start(ex)
        try:
            if not self.proxy.is_open:
                await self.startup()
            if traffic:
                await self._dispatch(ex)
            else:
                with untraced():  # the probes /health and /ready make upstream
                    await self._dispatch(ex)
        except Exception:
            log.exception("gateway_error", path=ex.path, upstream=ex.upstream)
            if not ex.started:
                ex.ratelimit = []
                await ex.error(500, "Internal server error", "internal_error")
        finally:
            if traffic:
                elapsed = time.perf_counter() - started
                # The upstream's own route template when it named one (`/api/movies/{movie_id}`),
                # else the gateway's prefix route (`/api/movies/{path}`): never a raw path.
                route = ex.upstream_route or ex.route
                self.metrics.observe(ex.upstream, route, ex.method, ex.status, elapsed)
                if self._access_log is not None and span is not None:  # traffic: a span
                    self._access_log.write(ex, elapsed, span)
            if span is not None:
                self._tracing.finish(ex, span, span_token)
            request_id_var.reset(token)

    async def _dispatch(self, ex: Exchange) -> None:
        """The pipeline: each step either answers the request (True) or passes it on."""
        if await self._cors(ex):
            return
        if await self.operations.answer(ex):
            return
        if await self._web_page(ex):
            return
        if await self._over_global_limit(ex):
            return
        upstream = self.router.match(ex.path)
        if upstream is None:
            await ex.error(404, "Endpoint not found", "endpoint_not_found")
            return
        ex.route = upstream.route
        if await self._body_too_large(ex):
            return
        authenticated, identity, keep_authorization = await self._authenticate(ex)
        if not authenticated:
            return
        if self.logins.applies(ex):
            await self.logins.forward(ex, upstream, identity, keep_authorization)
            return
        await self.proxy.forward(ex, upstream, identity, keep_authorization)

    # Pipeline steps: True when the step has answered ----------------------------------------

    async def _cors(self, ex: Exchange) -> bool:
        """Refuse a foreign origin, answer a preflight, or add the CORS headers and go on."""
        origin = ex.headers.get(b"origin")
        if origin is None:
            return False
        host = ex.headers.get(b"host")
        if not self.cors.allows(
            origin.decode("latin-1"),
            ex.scope.get("scheme", "http"),
            host.decode("latin-1") if host else None,
        ):
            await ex.error(403, "Origin not allowed", "cors_forbidden")
            return True
        if ex.method == "OPTIONS" and b"access-control-request-method" in ex.headers:
            requested = ex.headers.get(b"access-control-request-headers")
            await ex.start(204, self.cors.preflight_headers(origin, requested))
            await ex.body(b"")
            return True
        ex.extra.extend(self.cors.response_headers(origin))
        return False

    async def _web_page(self, ex: Exchange) -> bool:
        """Serve a file or client route of the web app (GET and HEAD only)."""
        if ex.path.startswith("/api/"):
            return False
        page = self.web.match(ex.path, wants_html(ex))
        if page is None:
            return False
        if ex.method not in ("GET", "HEAD"):
            await ex.error(
                405, "Method not allowed", "method_not_allowed", [(b"allow", b"GET, HEAD")]
            )
            return True
        ex.route = WEB_APP_ROUTE
        await self.web.serve(ex, page, ((b"vary", b"Accept"),) if page == self.web.index else ())
        return True

    async def _over_global_limit(self, ex: Exchange) -> bool:
        """Count the request against its IP's global limit; refuse it past the limit."""
        if not self.limits.enabled:
            return False
        verdict = await self.limits.hit_global(ex.client_ip)
        if not verdict.allowed:
            self.metrics.rate_limited.labels("global").inc()
            await ex.error(429, TOO_MANY_REQUESTS, "rate_limited", verdict.refusal_headers())
            return True
        ex.ratelimit = verdict.headers
        return False

    async def _body_too_large(self, ex: Exchange) -> bool:
        """Refuse a declared body over the route's limit here, before it goes upstream.

        An upstream that answers 413 and closes mid-upload would otherwise surface as a broken
        connection (502) instead of a clear 413. A modest body is read and dropped first, so
        the client still gets the answer.
        """
        declared = ex.headers.get(b"content-length")
        if declared is None:
            return False
        try:
            size = int(declared)
        except ValueError:
            return False
        if size <= self.router.body_limit(ex.method, ex.path):
            return False
        close = size > _DRAIN_LIMIT
        if not close:
            while (await ex.receive()).get("more_body", False):
                pass
        await ex.error(
            413,
            "Request body too large",
            "payload_too_large",
            [(b"connection", b"close")] if close else (),
        )
        return True

    async def _authenticate(self, ex: Exchange) -> tuple[bool, Identity | None, bool]:
        """(passed on, the caller's identity, whether to forward its Authorization header)."""
        authorization = ex.headers.get(b"authorization")
        if authorization is None:
            return True, None, True
        try:
            return True, await self.verifier.verify_header(authorization.decode("latin-1")), True
        except Unauthorized as exc:
            if ex.path.rstrip("/") not in _CREDENTIAL_PATHS:
                await ex.error(401, exc.message, exc.code)
                return False, None, False
            return True, None, False
        except Exception:
            log.exception("token_verification_failed")
            # The revocations are out of sync past the grace (or never were): not let through.
            await ex.error(
                503,
                "Authentication temporarily unavailable",
                "auth_unavailable",
                [(b"retry-after", b"2")],
            )
            return False, None, False


def create_app(settings: GatewaySettings, revocations: RevocationStore | None = None) -> Gateway:
    """The gateway with every adapter built; revocations default to Redis when configured."""
    configure_logging(settings.log_level, settings.log_format)
    tracing = Tracing.of(settings.service_name, settings.otlp_endpoint, settings.trace_sample_ratio)
    redis = (
        aioredis.Redis.from_pool(
            aioredis.ConnectionPool.from_url(
                settings.redis_url, socket_connect_timeout=1.0, socket_timeout=1.0
            )
        )
        if settings.redis_url
        else None
    )
    if redis is not None:
        tracing.instrument_redis(redis)
    if revocations is None:
        revocations = (
            RedisRevocationStore(
                redis,
                namespace=settings.namespace,
                grace_seconds=settings.revocation_grace_seconds,
            )
            if redis is not None
            else MemoryRevocationStore()
        )
    verifier = CachedTokenVerifier(
        TokenVerifier(
            JwksKeys(settings.users_url.rstrip("/") + "/.well-known/jwks.json"), revocations
        ),
        revocations,
        ttl=settings.token_cache_seconds,
    )
    breakers = _breakers(settings)
    metrics = GatewayMetrics(breakers, revocations)
    router = Router(settings)
    proxy = Proxy(settings, breakers, tracing)
    limits = RateLimits(settings, build_storage(settings, redis), redis)
    web = WebApp()
    api_docs = ApiDocs(settings.upstream_urls(), lambda path: router.match(path) is not None)
    return Gateway(
        router=router,
        cors=CorsPolicy(
            [*settings.cors_origins, settings.frontend_url], settings.cors_max_age_seconds
        ),
        operations=Operations(settings, metrics, proxy, redis, web, api_docs),
        web=web,
        limits=limits,
        verifier=verifier,
        revocations=revocations,
        logins=LoginLimiter(settings, limits, proxy, metrics),
        client_ip=ClientIp(settings.trusted_proxies),
        proxy=proxy,
        breakers=breakers,
        metrics=metrics,
        access_log=AccessLog.for_settings(settings),
        redis=redis,
        tracing=EdgeTracing(tracing, settings.trace_parent_networks),
    )


def _breakers(settings: GatewaySettings) -> dict[str, CircuitBreaker]:
    """One circuit breaker per upstream, or none when breakers are off."""
    if not settings.breaker_enabled:
        return {}
    return {
        name: CircuitBreaker(
            name,
            error_threshold_percent=settings.breaker_error_threshold_percent,
            window_seconds=settings.breaker_window_seconds,
            buckets=settings.breaker_window_buckets,
            volume_threshold=settings.breaker_volume_threshold,
            reset_seconds=settings.breaker_reset_seconds,
            on_change=_log_breaker_change,
        )
        for name in settings.upstream_urls()
    }


def _log_breaker_change(breaker: CircuitBreaker, state: Any) -> None:
    log.warning("circuit_state_changed", upstream=breaker.name, state=state.name.lower())
