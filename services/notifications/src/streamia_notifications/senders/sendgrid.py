"""SendGrid v3 Web API: `POST /v3/mail/send` with a Bearer key; 202 means accepted."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import parseaddr

import aiohttp
import orjson

from streamia_notifications.config import NotificationsSettings
from streamia_notifications.senders.base import PermanentSendError, TransientSendError


def mail_send_body(message: EmailMessage) -> dict[str, object]:
    """The v3 request for a multipart/alternative message (text/plain must come first)."""
    from_name, from_email = parseaddr(str(message["From"]))
    _, to_email = parseaddr(str(message["To"]))
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    content = []
    if text is not None:
        content.append({"type": "text/plain", "value": text.get_content()})
    if html is not None:
        content.append({"type": "text/html", "value": html.get_content()})
    event_id = str(message.get("X-Streamia-Event-Id", ""))
    body: dict[str, object] = {
        "personalizations": [{"to": [{"email": to_email}]}],
        "from": {"email": from_email, **({"name": from_name} if from_name else {})},
        "subject": str(message["Subject"]),
        "content": content,
        "headers": {"Message-ID": str(message["Message-ID"])},
        "categories": [str(message.get("X-Streamia-Email-Kind", "streamia"))],
    }
    if event_id:
        body["custom_args"] = {"event_id": event_id}
    return body


def _errors(payload: bytes) -> str:
    """SendGrid's `errors[].message`, never the request it echoes."""
    try:
        data = orjson.loads(payload)
        return "; ".join(str(e.get("message", "")) for e in data.get("errors", []))[:300]
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return ""


class SendGridSender:
    name = "sendgrid"

    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            key = self.settings.sendgrid_api_key
            self._session = aiohttp.ClientSession(
                headers={
                    "Authorization": f"Bearer {key.get_secret_value() if key else ''}",
                    "Content-Type": "application/json",
                },
                timeout=aiohttp.ClientTimeout(total=self.settings.sendgrid_timeout_seconds),
            )
        return self._session

    async def send(self, message: EmailMessage) -> str | None:
        url = f"{self.settings.sendgrid_api_url.rstrip('/')}/v3/mail/send"
        try:
            async with self._client().post(url, data=orjson.dumps(mail_send_body(message))) as resp:
                payload = await resp.read()
                status = resp.status
                message_id = resp.headers.get("X-Message-Id")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransientSendError(f"{type(exc).__name__}: {exc}") from exc
        if status in (200, 202):
            return message_id
        error = f"SendGrid HTTP {status} {_errors(payload)}".strip()
        if status == 429 or status >= 500:
            raise TransientSendError(error)
        raise PermanentSendError(error)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
