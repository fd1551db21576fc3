"""Pick the sender the settings ask for."""

from __future__ import annotations

from streamia_notifications.config import NotificationsSettings
from streamia_notifications.senders.base import EmailSender
from streamia_notifications.senders.outbox import FileOutboxSender
from streamia_notifications.senders.sendgrid import SendGridSender
from streamia_notifications.senders.smtp import SmtpSender


def build_sender(settings: NotificationsSettings) -> EmailSender:
    kind = settings.sender_kind
    if kind == "smtp":
        return SmtpSender(settings)
    if kind == "sendgrid":
        return SendGridSender(settings)
    return FileOutboxSender(settings.resolved_outbox_dir)
