"""Movies service settings."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr

from streamia_kit.config import ServiceSettings
from streamia_movies.media.images import DEFAULT_MAX_COVER_BYTES
from streamia_movies.media.uploads import DEFAULT_IDLE_TIMEOUT_SECONDS, DEFAULT_MAX_VIDEO_BYTES


class MoviesSettings(ServiceSettings):
    service_name: ClassVar[str] = "movies"

    # Media storage. Unset store => Cloudinary when CLOUDINARY_URL is set, local disk otherwise.
    media_store: Literal["local", "cloudinary"] | None = None
    media_dir: Path | None = None  # default: <data_dir>/media
    cloudinary_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "STREAMIA_CLOUDINARY_URL", "CLOUDINARY_URL", "cloudinary_url"
        ),
    )
    cloudinary_folder: str = "streamia"
    # Prefix of local media URLs as clients see them (through the gateway).
    public_media_path: str = "/api/movies/media"

    max_upload_bytes: int = DEFAULT_MAX_VIDEO_BYTES
    max_subtitle_bytes: int = 5 * 1024 * 1024
    max_cover_bytes: int = Field(
        default=DEFAULT_MAX_COVER_BYTES, gt=0, description="largest cover image accepted"
    )

    # Each upload is read (probe + poster frame, PyAV) in a child process with these limits.
    media_read_timeout_seconds: float = Field(
        default=60.0, gt=0, description="time limit to read an upload; slower files get 400"
    )
    upload_idle_timeout_seconds: float = Field(
        default=DEFAULT_IDLE_TIMEOUT_SECONDS,
        gt=0,
        description="an upload that sends nothing for this long gets 408 (its file is removed)",
    )
    media_read_memory_mb: int = Field(
        default=1024, ge=256, description="memory limit of the process reading an upload"
    )

    movie_cache_ttl_seconds: float = 60.0
    # /explore totals are also dropped by every catalogue change; the TTL only bounds how
    # long a lost invalidation (a crash between commit and cache write) could linger.
    explore_totals_ttl_seconds: float = 300.0
    # After a catalogue change (debounced by this delay) and at start, the totals of the
    # whole catalogue and of the most recent searches are counted again in the background,
    # so the next visitor does not pay for the count. 0 searches: only the catalogue's.
    explore_warm_delay_seconds: float = 1.0
    explore_warm_searches: int = 32

    @property
    def media_root(self) -> Path:
        return self.media_dir or self.data_dir / "media"

    @property
    def store_kind(self) -> str:
        if self.media_store:
            return self.media_store
        return "cloudinary" if self.cloudinary_url else "local"
