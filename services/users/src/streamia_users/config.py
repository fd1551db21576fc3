"""Users service settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from streamia_kit.config import ServiceSettings


class UsersSettings(ServiceSettings):
    service_name: ClassVar[str] = "users"

    # Ed25519 private key (PEM). Unset outside production: generated once under data_dir.
    jwt_private_key: str | None = None
    jwt_private_key_file: Path | None = None
    token_lifetime_seconds: int = 2 * 3600
    reset_token_lifetime_seconds: int = 3600
    reset_email_interval_seconds: int = Field(
        300, ge=0, description="one password-reset email per address per this many seconds"
    )
    # argon2id cost: OWASP's Password Storage Cheat Sheet minimum for interactive login
    # (19 MiB, t=2, p=1); bench/auth.py measures what it costs per core.
    argon2_time_cost: int = Field(2, ge=1, description="argon2id iterations")
    argon2_memory_kib: int = Field(19456, ge=8, description="argon2id memory per hash (KiB)")
    argon2_parallelism: int = Field(1, ge=1, description="argon2id lanes per hash")
    password_workers: int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)),
        ge=1,
        description="threads hashing passwords (default: the CPUs this process may use)",
    )
    password_queue_limit: int = Field(
        32,
        ge=0,
        description="hashes that may wait for a worker; beyond it: 503 `busy` with Retry-After",
    )

    def insecure_defaults(self) -> list[str]:
        bad = super().insecure_defaults()
        if not self.jwt_private_key and not self.jwt_private_key_file:
            bad.append("STREAMIA_JWT_PRIVATE_KEY")
        return bad

    @property
    def generated_key_path(self) -> Path:
        return self.data_dir / "users-jwt-ed25519.pem"
