"""Settings shared by every service: one base class, env prefix ``STREAMIA_``."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORTS = {
    "gateway": 8080,
    "users": 3001,
    "movies": 3002,
    "favorites": 3003,
    "ratings": 3004,
    "comments": 3005,
    "notifications": 3006,
    "playback": 3007,
}

DEV_INTERNAL_SECRET = "dev-internal-secret-change-me"


class ServiceSettings(BaseSettings):
    """Configuration common to every service; each service subclasses it."""

    model_config = SettingsConfigDict(env_prefix="STREAMIA_", extra="ignore", env_file=None)

    service_name: ClassVar[str] = "service"

    environment: Literal["development", "test", "production"] = Field(
        "development",
        description="development, test or production (production refuses default secrets)",
    )
    host: str = Field("127.0.0.1", description="interface to bind (0.0.0.0 in containers)")
    port: int | None = Field(
        None, description="port for `streamia serve` (default: the port of the service's own URL)"
    )
    data_dir: Path = Field(
        Path(".streamia"),
        description="SQLite files, in-process bus, media, email outbox, dev signing key",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ...")
    log_format: Literal["json", "console"] = Field("json", description="json (default) or console")

    # Infrastructure. Unset => embedded adapters (SQLite file, in-process bus and cache).
    # database_url may contain "{service}", e.g. postgresql+asyncpg://postgres@127.0.0.1/streamia_{service}
    database_url: str | None = Field(
        None,
        description=(
            "SQLAlchemy URL; `{service}` becomes the service name. Unset: SQLite under data_dir"
        ),
    )
    database_pool_size: int = Field(
        20,
        ge=1,
        le=1000,
        description="PostgreSQL connections kept per service process (as many again at peaks)",
    )
    # Every service bounds its own work below the gateway's wait, so a 504 means "not done".
    breaker_timeout_seconds: float = Field(
        3.0,
        gt=0,
        le=300,
        description=(
            "the gateway's wait for an upstream's response headers (504 after it);"
            " the services' database timeouts default to fractions of it"
        ),
    )
    database_statement_timeout_seconds: float | None = Field(
        None,
        ge=0,
        le=3600,
        description=(
            "longest SQL statement (PostgreSQL statement_timeout, SQLite's wait for a lock);"
            " 0: none. Unset: 2/3 of STREAMIA_BREAKER_TIMEOUT_SECONDS"
        ),
    )
    database_pool_timeout_seconds: float | None = Field(
        None,
        gt=0,
        le=3600,
        description=(
            "longest wait for a pooled or new PostgreSQL connection."
            " Unset: 1/3 of STREAMIA_BREAKER_TIMEOUT_SECONDS"
        ),
    )
    amqp_url: str | None = Field(None, description="RabbitMQ URL. Unset: the in-process bus")
    redis_url: str | None = Field(
        None,
        description="Redis URL (cache, rate limits, revocation, email jobs). Unset: in process",
    )
    revocation_grace_seconds: float = Field(
        300.0,
        ge=0,
        le=86400,
        description=(
            "how long tokens are still checked against the last synced copy of the revocations"
            " once Redis is lost (then 503 until it is back); 0: refused within 3 s"
        ),
    )
    create_database: bool = Field(
        True, description="create the PostgreSQL database on start if missing"
    )
    # Prefix for exchange/queue names and Redis keys: keeps parallel test runs apart.
    namespace: str = Field(
        "", description="prefix for exchanges, queues and Redis keys (isolates parallel runs)"
    )

    # Where the other services live (the gateway proxies to them; services fetch JWKS).
    gateway_url: str = Field("http://127.0.0.1:8080", description="where the gateway listens")
    users_url: str = Field(
        "http://127.0.0.1:3001", description="users service base URL (also the JWKS source)"
    )
    movies_url: str = Field("http://127.0.0.1:3002", description="movies service base URL")
    favorites_url: str = Field("http://127.0.0.1:3003", description="favorites service base URL")
    ratings_url: str = Field("http://127.0.0.1:3004", description="ratings service base URL")
    comments_url: str = Field("http://127.0.0.1:3005", description="comments service base URL")
    notifications_url: str = Field(
        "http://127.0.0.1:3006", description="notification service base URL"
    )
    playback_url: str = Field("http://127.0.0.1:3007", description="playback service base URL")
    public_url: str | None = Field(
        None,
        description=(
            "public base URL of the API: absolute media URLs and rewritten redirects."
            " Unset: the gateway URL"
        ),
    )
    frontend_url: str = Field(
        "http://localhost:8080",
        description="web app base URL used in email links (`/reset-password/<token>`)",
    )

    # Messaging.
    max_delivery_attempts: int = Field(
        5, description="deliveries of an event before it goes to `<queue>.dlq`"
    )
    retry_base_delay_seconds: float = Field(
        0.5, description="first retry delay; doubles each attempt"
    )
    prefetch: int = Field(256, description="RabbitMQ prefetch per consumer channel")
    consumer_batch: int = Field(
        64,
        ge=1,
        le=1000,
        description=(
            "deliveries of one queue applied together, in one transaction (1: each alone)"
        ),
    )
    consumer_linger_ms: float = Field(
        3.0,
        ge=0,
        le=1000,
        description=(
            "while a queue is busy, how long a consumer waits for more deliveries to fill a"
            " batch (a lone event never waits)"
        ),
    )
    outbox_poll_seconds: float = Field(
        1.0, description="outbox relay poll interval (it is also woken on commit)"
    )

    # Requests.
    deadline_margin_seconds: float = Field(
        0.25,
        ge=0,
        le=10,
        description=(
            "a request given a deadline (X-Streamia-Deadline-Ms) stops this long before it,"
            " to leave its answer time to reach the gateway"
        ),
    )
    max_json_body_bytes: int = Field(
        64 * 1024, description="largest JSON request body (413 above it)"
    )

    # Observability.
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint for traces (e.g. Jaeger), unset: no export"
    )
    trace_sample_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="share of new traces recorded (where a trace starts: the gateway);"
        " a caller's decision is followed",
    )

    # Shared secret for service-to-service calls that carry no user (e.g. projections catch-up).
    internal_secret: str = Field(
        DEV_INTERNAL_SECRET, description="shared secret for service-to-service calls"
    )

    @property
    def statement_timeout(self) -> float | None:
        """Seconds a SQL statement may run (None: unbounded), from the gateway's timeout."""
        value = self.database_statement_timeout_seconds
        if value is None:
            return self.breaker_timeout_seconds * 2 / 3
        return value or None

    @property
    def pool_timeout(self) -> float:
        """Seconds to wait for a database connection, from the gateway's timeout."""
        return self.database_pool_timeout_seconds or self.breaker_timeout_seconds / 3

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def embedded(self) -> bool:
        return self.amqp_url is None

    @property
    def bind_port(self) -> int:
        """STREAMIA_PORT, else the port of this service's own URL, else its default."""
        if self.port:
            return self.port
        url = getattr(self, f"{self.service_name}_url", None)
        return (urlparse(url).port if url else None) or DEFAULT_PORTS[self.service_name]

    @property
    def public_base(self) -> str:
        """Where clients reach the API (no trailing slash): STREAMIA_PUBLIC_URL or the gateway."""
        return (self.public_url or self.gateway_url).rstrip("/")

    def service_url(self, name: str) -> str:
        return getattr(self, f"{name}_url")

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL for this service's own database."""
        if self.database_url:
            return self.database_url.replace("{service}", self.service_name)
        path = (self.data_dir / f"{self.service_name}.sqlite").resolve()
        return f"sqlite+aiosqlite:///{path}"

    def insecure_defaults(self) -> list[str]:
        """Names of settings still holding development defaults or template placeholders."""
        bad = ["STREAMIA_INTERNAL_SECRET"] if self.internal_secret == DEV_INTERNAL_SECRET else []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):  # its str() is a mask: look at the real value
                value = value.get_secret_value()
            if isinstance(value, str) and "REPLACE_ME" in value:
                bad.append(f"STREAMIA_{name.upper()}")
        return bad

    @model_validator(mode="after")
    def _refuse_defaults_in_production(self) -> ServiceSettings:
        if self.is_production:
            bad = self.insecure_defaults()
            if bad:
                raise ValueError(
                    "production mode refuses to start with default secrets: " + ", ".join(bad)
                )
        return self


def absolute_url(url: str | None, public_base: str) -> str | None:
    """A URL the platform serves itself (`/api/...`) made absolute on the public base URL:
    clients served from another origin put media URLs straight into `<video src>`."""
    if url and url.startswith("/") and not url.startswith("//"):
        return public_base + url
    return url
