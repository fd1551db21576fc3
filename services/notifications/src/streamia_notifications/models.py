"""Every table of the service's database, for create_app and migrations/env.py."""

from __future__ import annotations

from streamia_notifications.database import Base
from streamia_notifications.emails.models import SentEmail
from streamia_notifications.jobs.models import QueuedEmail
from streamia_notifications.recipients.models import Recipient

metadata = Base.metadata

__all__ = ["Base", "QueuedEmail", "Recipient", "SentEmail", "metadata"]
