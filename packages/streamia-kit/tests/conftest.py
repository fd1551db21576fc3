"""Fixtures for the kit's own tests: a bus, and a tiny service database with outbox/inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table

from streamia_kit.config import ServiceSettings
from streamia_kit.db import NAMING, Database, ensure_database
from streamia_kit.infra import Infrastructure
from streamia_kit.messaging import Inbox, Outbox, OutboxRelay, messaging_tables
from streamia_kit.testing import Stack


class KitSettings(ServiceSettings):
    service_name = "users"  # any service name: it picks the database and queue names


@dataclass
class Harness:
    stack: Stack
    settings: KitSettings
    infra: Infrastructure
    db: Database
    outbox: Outbox
    inbox: Inbox
    relay: OutboxRelay
    applied: Table


def make_harness(stack: Stack, **overrides: object) -> Harness:
    settings = KitSettings(**stack.overrides(**overrides))
    metadata = MetaData(naming_convention=NAMING)
    outbox_table, inbox_table = messaging_tables(metadata)
    applied = Table(
        "applied",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False),
    )
    infra = Infrastructure.from_settings(settings)
    db = Database(settings.resolved_database_url())
    relay = OutboxRelay(
        db, infra.bus, outbox_table, poll_seconds=0.2, service=settings.service_name
    )
    db.after_outbox_commit.append(relay.wake)
    harness = Harness(
        stack,
        settings,
        infra,
        db,
        Outbox(outbox_table, "streamia/test"),
        Inbox(inbox_table),
        relay,
        applied,
    )
    harness.metadata = metadata  # type: ignore[attr-defined]
    return harness


async def open_harness(harness: Harness) -> None:
    await ensure_database(harness.settings.resolved_database_url())
    async with harness.db.engine.begin() as conn:
        await conn.run_sync(harness.metadata.create_all)  # type: ignore[attr-defined]


@pytest.fixture
async def harness(stack: Stack) -> AsyncIterator[Harness]:
    h = make_harness(stack)
    await open_harness(h)
    yield h
    await h.relay.stop()
    await h.infra.close()
    await h.db.dispose()


@pytest.fixture
def harness_factory():
    """(make_harness, open_harness) for tests that need custom settings."""
    return make_harness, open_harness
