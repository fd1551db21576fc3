"""create_app: the only place the notification service's adapters are wired."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from streamia_kit.infra import Infrastructure
from streamia_kit.service import Service
from streamia_notifications import consumers
from streamia_notifications.config import NotificationsSettings
from streamia_notifications.emails.renderer import EmailRenderer
from streamia_notifications.emails.service import Mailer
from streamia_notifications.jobs.db_queue import DatabaseEmailQueue
from streamia_notifications.jobs.policy import DeliveryPolicy
from streamia_notifications.jobs.queue import EmailQueue
from streamia_notifications.models import metadata
from streamia_notifications.senders.factory import build_sender

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: NotificationsSettings | None = None,
    infra: Infrastructure | None = None,
    manage_lifecycle: bool = True,
) -> FastAPI:
    settings = settings or NotificationsSettings()
    service = Service(settings, metadata, MIGRATIONS, infra=infra)
    sender = build_sender(settings)
    mailer = Mailer(service.db, EmailRenderer(settings), sender)
    policy = DeliveryPolicy(settings, mailer, service.tracing)
    queue: EmailQueue
    if settings.redis_url:
        from streamia_notifications.jobs.arq_queue import ArqEmailQueue

        queue = ArqEmailQueue(settings, policy)
    else:
        queue = DatabaseEmailQueue(service.db, policy, settings)
    consumers.register(service, queue)
    service.on_start.append(queue.start)
    service.on_stop.append(queue.stop)
    service.on_stop.append(sender.close)
    service.ready_checks["email_jobs"] = queue.ping
    app = service.create_app(
        "Streamia notifications",
        [],
        description="Welcome, password-reset and farewell emails; /health, /ready, /metrics.",
        manage_lifecycle=manage_lifecycle,
    )
    app.state.mailer = mailer
    app.state.email_queue = queue
    return app
