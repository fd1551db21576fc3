"""SQL of the recipients projection."""

from __future__ import annotations

from sqlalchemy import false

from streamia_kit.repository import Repository
from streamia_notifications.recipients.models import Recipient


class RecipientsRepository(Repository[Recipient]):
    async def get(self, user_id: str) -> Recipient | None:
        """The live account's recipient; None for an unknown or deleted one."""
        found = await self.session.get(Recipient, user_id)
        return None if found is None or found.deleted else found

    async def upsert(
        self,
        user_id: str,
        email: str,
        first_name: str,
        last_name: str,
        language: str | None,
        version: float,
    ) -> None:
        """Keep the newest address and names (user events can arrive out of order)."""
        stmt = self.insert(Recipient).values(
            user_id=user_id,
            email=email,
            first_name=first_name,
            last_name=last_name,
            language=language,
            version=version,
            deleted=False,
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Recipient.user_id],
                set_={
                    "email": stmt.excluded.email,
                    "first_name": stmt.excluded.first_name,
                    "last_name": stmt.excluded.last_name,
                    "language": stmt.excluded.language,
                    "version": stmt.excluded.version,
                },
                where=(Recipient.version < stmt.excluded.version) & (Recipient.deleted == false()),
            )
        )

    async def remove(self, user_id: str) -> None:
        """Forget the address and names for good (a tombstone stays)."""
        gone = {"email": "", "first_name": "", "last_name": "", "language": None, "deleted": True}
        stmt = self.insert(Recipient).values(user_id=user_id, version=0.0, **gone)
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=[Recipient.user_id], set_=gone)
        )
