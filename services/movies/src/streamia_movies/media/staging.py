"""The staging folder's sweeper: upload and spool files a crashed process left behind.

A SIGKILL mid-upload leaves its `.upload-*` file (up to the upload size limit) for good, as
nothing else ever deletes it. An upload in progress writes its file at least every minute
(a stalled one gets 408 after `upload_idle_timeout_seconds`), so an hour without a write means
no request owns it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import structlog

from streamia_kit.faults import Supervisor

log = structlog.get_logger("streamia.movies.staging")

# `uploads.receive_multipart`'s parts (covers add `.jpg`) and `storage._spool`'s copies.
PATTERNS = (".upload-*", ".incoming-*")
MAX_AGE_SECONDS = 3600.0
SWEEP_EVERY_SECONDS = 3600.0


def sweep(staging_dir: Path, max_age: float = MAX_AGE_SECONDS) -> list[Path]:
    """Delete staging files last written more than `max_age` seconds ago; the ones deleted."""
    cutoff = time.time() - max_age
    removed = []
    for pattern in PATTERNS:
        for path in staging_dir.glob(pattern):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:  # its request finished (and removed it) meanwhile
                continue
    return removed


class StagingSweeper:
    """Sweeps at start and every `every` seconds, under a `Supervisor` (`staging-sweep`)."""

    def __init__(self, staging_dir: Path, every: float = SWEEP_EVERY_SECONDS) -> None:
        self.staging_dir = staging_dir
        self.every = every
        self.supervisor = Supervisor("staging-sweep", self._run, service="movies")

    async def start(self) -> None:
        self.supervisor.start()

    async def stop(self) -> None:
        await self.supervisor.stop()

    async def _run(self) -> None:
        while True:
            removed = await asyncio.to_thread(sweep, self.staging_dir)
            if removed:
                log.warning(
                    "stale_staging_files_removed",
                    count=len(removed),
                    files=[path.name for path in removed[:20]],
                )
            await asyncio.sleep(self.every)
