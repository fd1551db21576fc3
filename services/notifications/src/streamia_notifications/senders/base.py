"""The sender port: send one message, or say whether trying again later could help."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol


class SendError(Exception):
    """A message was not accepted."""


class TransientSendError(SendError):
    """Worth retrying later: the server is down, busy or said 4xx/429/5xx-over-HTTP."""


class PermanentSendError(SendError):
    """Retrying cannot help: e.g. the address was rejected (SMTP 5xx, HTTP 4xx)."""


class EmailSender(Protocol):
    name: str

    async def send(self, message: EmailMessage) -> str | None:
        """Hand the message over; returns the provider's message id when it gives one."""
        ...

    async def close(self) -> None: ...
