"""Gateway settings: upstream timeouts, circuit breaker, rate limits and CORS."""

from __future__ import annotations

import json
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Any, ClassVar

from limits import parse
from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from streamia_kit.config import ServiceSettings

UPSTREAMS = ("users", "movies", "favorites", "ratings", "comments", "playback")


class GatewaySettings(ServiceSettings):
    """Configuration of the API gateway (env prefix ``STREAMIA_``)."""

    service_name: ClassVar[str] = "gateway"

    # Origins a browser may call the API from; "*" allows any. The gateway's own origin
    # (same-origin requests from the web app at "/") is always allowed.
    cors_origins: Annotated[list[str], NoDecode] = [
        "http://localhost:8080",
        "http://127.0.0.1:8080",
        "http://localhost:3000",
        "http://localhost:5173",
    ]
    cors_max_age_seconds: int = 600

    # Rate limits in `limits` notation: the global one a sliding window counter, the login
    # ones moving windows (ratelimit.py).
    rate_limits_enabled: bool = True
    rate_limit_global: str = "300/minute"  # per client IP
    rate_limit_login: str = Field(
        "5/10 minutes", description="password checks per IP + account (a success refunds)"
    )
    rate_limit_login_account: str = Field(
        "10/minute",
        description="password checks per account from any IP: slows stuffing, never locks long",
    )
    rate_limit_login_ip: str = Field(
        "30/10 minutes", description="wrong passwords per IP across every account (spraying)"
    )
    credential_concurrency_per_ip: int = Field(
        4, ge=1, description="password-checking requests one IP may have in flight (429 beyond)"
    )
    credential_timeout_seconds: float = Field(
        10.0, gt=0, description="wait for the users service on routes that check a password"
    )
    # Proxies in front of the gateway (the ingress controller); the client IP is the right-most
    # X-Forwarded-For address not in these networks. Empty: the TCP peer is the client.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list,
        description="CIDRs of proxies whose X-Forwarded-For is believed (comma-separated)",
    )
    # Internal callers whose `traceparent` the gateway continues (the trace is theirs). From
    # anyone else it is only a span link: an outsider must not choose trace ids or sampling.
    trace_parent_networks: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list,
        description="CIDRs of internal callers whose traceparent starts the gateway's span"
        " (comma-separated); anyone else's is recorded as a span link",
    )
    # Redis key prefix of the counters (joined after `namespace`), so parallel runs stay apart.
    rate_limit_key_prefix: str = "streamia:gateway:ratelimit"
    login_body_max_bytes: int = 16 * 1024
    max_upload_bytes: int = Field(
        2 * 1024**3, description="largest upload (video/subtitle) the gateway lets through (413)"
    )

    # Circuit breaker per upstream (the seed's opossum values).
    breaker_enabled: bool = True
    # breaker_timeout_seconds (the wait for an upstream's response headers) is in the kit's
    # ServiceSettings: the services bound their own work below it.
    breaker_error_threshold_percent: float = 50.0
    breaker_window_seconds: float = 10.0
    breaker_window_buckets: int = 10
    breaker_volume_threshold: int = 10
    breaker_reset_seconds: float = 30.0  # open for this long, then one half-open probe

    # Upstream HTTP client.
    upstream_connect_timeout_seconds: float = 1.0
    # Longest silence from an upstream while its response body streams.
    upstream_read_timeout_seconds: float = 30.0
    upstream_pool_size: int = 1000
    ready_timeout_seconds: float = 1.0

    # How long a verified token signature is remembered (revocation is checked every request).
    token_cache_seconds: float = 60.0

    access_log: bool = True

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        """Accept a JSON list or a comma-separated string from the environment."""
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", "trace_parent_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "rate_limit_global", "rate_limit_login", "rate_limit_login_account", "rate_limit_login_ip"
    )
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        parse(value)  # raises ValueError on a malformed limit string
        return value

    def limiter_key_prefix(self) -> str:
        return f"{self.namespace}{self.rate_limit_key_prefix}"

    def upstream_urls(self) -> dict[str, str]:
        return {name: self.service_url(name).rstrip("/") for name in UPSTREAMS}
