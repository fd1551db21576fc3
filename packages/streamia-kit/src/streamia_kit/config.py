"""Settings shared by every service: one base class, env prefix ``STREAMIA_``."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlparse

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORTS = {
    "gateway": 8080,
    "users": 3001,
    "movies": 3002,
    "favorites": 3003,
    "ratings": 3004,
    "comments": 3005,
    "notifications": 3006,
}

DEV_INTERNAL_SECRET = "dev-internal-secret-change-me"


class ServiceSettings(BaseSettings):
    """Configuration common to every service; each service subclasses it."""

    model_config = SettingsConfigDict(env_prefix="STREAMIA_", extra="ignore", env_file=None)

    service_name: ClassVar[str] = "service"

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int | None = None
    data_dir: Path = Path(".streamia")
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

    # Infrastructure. Unset => embedded adapters (SQLite file, in-process bus and cache).
    # database_url may contain "{service}", e.g. postgresql+asyncpg://postgres@127.0.0.1/streamia_{service}
    database_url: str | None = None
    amqp_url: str | None = None
    redis_url: str | None = None
    create_database: bool = True
    # Prefix for exchange/queue names and Redis keys: keeps parallel test runs apart.
    namespace: str = ""

    # Where the other services live (the gateway proxies to them; services fetch JWKS).
    users_url: str = "http://127.0.0.1:3001"
    movies_url: str = "http://127.0.0.1:3002"
    favorites_url: str = "http://127.0.0.1:3003"
    ratings_url: str = "http://127.0.0.1:3004"
    comments_url: str = "http://127.0.0.1:3005"
    notifications_url: str = "http://127.0.0.1:3006"
    frontend_url: str = "http://localhost:8080"

    # Messaging.
    max_delivery_attempts: int = 5
    retry_base_delay_seconds: float = 0.5
    prefetch: int = 64
    outbox_poll_seconds: float = 1.0

    # Requests.
    max_json_body_bytes: int = 64 * 1024

    # Observability.
    otlp_endpoint: str | None = None

    # Shared secret for service-to-service calls that carry no user (e.g. projections catch-up).
    internal_secret: str = DEV_INTERNAL_SECRET

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

    def service_url(self, name: str) -> str:
        return getattr(self, f"{name}_url")

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL for this service's own database."""
        if self.database_url:
            return self.database_url.replace("{service}", self.service_name)
        path = (self.data_dir / f"{self.service_name}.sqlite").resolve()
        return f"sqlite+aiosqlite:///{path}"

    def insecure_defaults(self) -> list[str]:
        """Names of settings still holding development defaults; services extend this."""
        return ["STREAMIA_INTERNAL_SECRET"] if self.internal_secret == DEV_INTERNAL_SECRET else []

    @model_validator(mode="after")
    def _refuse_defaults_in_production(self) -> ServiceSettings:
        if self.is_production:
            bad = self.insecure_defaults()
            if bad:
                raise ValueError(
                    "production mode refuses to start with default secrets: " + ", ".join(bad)
                )
        return self
