"""SQL of the sent-email record."""

from __future__ import annotations

from sqlalchemy import select

from streamia_kit.db import utcnow
from streamia_kit.repository import Repository
from streamia_notifications.emails.models import SentEmail


class SentEmailsRepository(Repository[SentEmail]):
    async def was_sent(self, event_id: str) -> bool:
        found = await self.session.scalar(
            select(SentEmail.event_id).where(SentEmail.event_id == event_id)
        )
        return found is not None

    async def record(
        self, event_id: str, kind: str, recipient: str, sender: str, provider_id: str | None
    ) -> None:
        await self.session.execute(
            self.insert(SentEmail)
            .values(
                event_id=event_id,
                kind=kind,
                recipient=recipient,
                sender=sender,
                provider_id=(provider_id or None) and provider_id[:255],
                sent_at=utcnow(),
            )
            .on_conflict_do_nothing()
        )
