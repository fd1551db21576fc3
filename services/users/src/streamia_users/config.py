"""Users service settings."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from streamia_kit.config import ServiceSettings


class UsersSettings(ServiceSettings):
    service_name: ClassVar[str] = "users"

    # Ed25519 private key (PEM). Unset outside production: generated once under data_dir.
    jwt_private_key: str | None = None
    jwt_private_key_file: Path | None = None
    token_lifetime_seconds: int = 2 * 3600
    reset_token_lifetime_seconds: int = 3600
    # argon2id cost (RFC 9106 low-memory profile by default).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4

    def insecure_defaults(self) -> list[str]:
        bad = super().insecure_defaults()
        if not self.jwt_private_key and not self.jwt_private_key_file:
            bad.append("STREAMIA_JWT_PRIVATE_KEY")
        return bad

    @property
    def generated_key_path(self) -> Path:
        return self.data_dir / "users-jwt-ed25519.pem"
