"""Alembic per service, applied on start. A service's `migrations/env.py` calls `run_env`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(script_location: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def migrate(script_location: Path, url: str) -> None:
    """Upgrade the database at `url` to head with the service's migration scripts."""
    cfg = alembic_config(script_location, url)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:

            def upgrade(sync_conn: Connection) -> None:
                if sync_conn.dialect.name == "postgresql":
                    # Replicas starting together on a fresh database take turns.
                    sync_conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7265730201)")
                cfg.attributes["connection"] = sync_conn
                command.upgrade(cfg, "head")

            await conn.run_sync(upgrade)
    finally:
        await engine.dispose()


def run_env(target_metadata: MetaData | list[MetaData]) -> None:
    """Body of every service's env.py: online migrations on a given or fresh connection."""

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    connection: Any = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return

    async def _run() -> None:
        engine = create_async_engine(context.config.get_main_option("sqlalchemy.url") or "")
        async with engine.begin() as conn:
            await conn.run_sync(run)
        await engine.dispose()

    asyncio.run(_run())
