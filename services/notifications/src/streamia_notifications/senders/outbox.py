"""The embedded-mode sender: each email becomes `<outbox>/<UTC time>-<kind>-<to>.eml`.

Names sort by time, so the newest reset email is the last `*-password-reset-*.eml`."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from streamia_kit.files import private_dir, private_file
from streamia_notifications.senders.base import TransientSendError


def outbox_filename(message: EmailMessage, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    kind = str(message.get("X-Streamia-Email-Kind", "email"))
    to = re.sub(r"[^A-Za-z0-9@._+-]", "_", str(message["To"].addresses[0].addr_spec))
    return f"{now:%Y%m%dT%H%M%S.%f}Z-{kind}-{to}.eml"


class FileOutboxSender:
    name = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _write(self, message: EmailMessage) -> Path:
        path = private_dir(self.directory) / outbox_filename(message)
        # Write then rename, so a reader never sees half an email (which may hold a reset link).
        partial = private_file(path.with_name("." + path.name + ".part"))
        partial.write_bytes(bytes(message))
        os.replace(partial, path)
        return path

    async def send(self, message: EmailMessage) -> str | None:
        try:
            path = await asyncio.to_thread(self._write, message)
        except OSError as exc:  # a full or read-only disk may recover
            raise TransientSendError(f"{type(exc).__name__}: {exc}") from exc
        return path.name

    async def close(self) -> None:
        return None
