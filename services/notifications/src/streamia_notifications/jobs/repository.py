"""SQL of the database-backed email queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.engine import CursorResult

from streamia_kit.db import utcnow
from streamia_kit.repository import Repository
from streamia_notifications.emails.schemas import EmailJob
from streamia_notifications.jobs.models import QueuedEmail


class QueuedEmailsRepository(Repository[QueuedEmail]):
    async def enqueue(self, job: EmailJob) -> bool:
        now = utcnow()
        result = cast(
            CursorResult[Any],
            await self.session.execute(
                self.insert(QueuedEmail)
                .values(
                    event_id=job.event_id,
                    kind=job.kind,
                    payload=job.model_dump_json(),
                    attempts=0,
                    available_at=now,
                    created_at=now,
                )
                .on_conflict_do_nothing()
            ),
        )
        return bool(result.rowcount)

    async def claim(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[str, str, int]]:
        """Lock up to `limit` due jobs until `lease_until`; (event_id, payload, attempt)."""
        query = (
            select(QueuedEmail.event_id, QueuedEmail.payload, QueuedEmail.attempts)
            .where(
                QueuedEmail.available_at <= now,
                or_(QueuedEmail.locked_until.is_(None), QueuedEmail.locked_until < now),
            )
            .order_by(QueuedEmail.available_at)
            .limit(limit)
        )
        if self.dialect == "postgresql":  # several replicas may run jobs at once
            query = query.with_for_update(skip_locked=True)
        rows = (await self.session.execute(query)).all()
        if rows:
            await self.session.execute(
                update(QueuedEmail)
                .where(QueuedEmail.event_id.in_([r.event_id for r in rows]))
                .values(attempts=QueuedEmail.attempts + 1, locked_until=lease_until)
            )
        return [(r.event_id, r.payload, r.attempts + 1) for r in rows]

    async def next_due(self) -> datetime | None:
        return await self.session.scalar(
            select(func.min(QueuedEmail.available_at)).where(QueuedEmail.locked_until.is_(None))
        )

    async def finish(self, event_id: str) -> None:
        await self.session.execute(delete(QueuedEmail).where(QueuedEmail.event_id == event_id))

    async def reschedule(self, event_id: str, at: datetime, error: str | None) -> None:
        await self.session.execute(
            update(QueuedEmail)
            .where(QueuedEmail.event_id == event_id)
            .values(available_at=at, locked_until=None, last_error=error)
        )

    async def release_all(self) -> int:
        """Unlock every job (the single owner of a SQLite file restarting after a crash)."""
        result = await self.session.execute(
            update(QueuedEmail)
            .where(QueuedEmail.locked_until.is_not(None))
            .values(locked_until=None)
        )
        return cast(CursorResult[Any], result).rowcount or 0
