"""Bulk loads (`streamia_kit.bulk.insert_new`): every new row in, nothing twice, clashes on
any unique constraint skipped, values stored as the column types store them, on both stacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Column, Integer, String, Table, Text, UniqueConstraint, select

from streamia_kit.bulk import insert_new
from streamia_kit.db import UTCDateTime, new_id


async def _loaded(harness_factory, stack):
    make, open_ = harness_factory
    harness = make(stack)
    table = Table(
        "pairs",
        harness.metadata,
        Column("id", String(32), primary_key=True),
        Column("user_id", String(64), nullable=False),
        Column("movie_id", String(64), nullable=False),
        Column("note", Text, nullable=True),
        Column("stars", Integer, nullable=False),
        Column("source", String(10), nullable=False, default="api", server_default="api"),
        Column("created_at", UTCDateTime, nullable=False),
        UniqueConstraint("user_id", "movie_id"),
    )
    await open_(harness)
    return harness, table


def _row(user: str, movie: str, **extra: object) -> dict[str, object]:
    return {
        "id": new_id(),
        "user_id": user,
        "movie_id": movie,
        "note": None,
        "stars": 3,
        "created_at": datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC),
        **extra,
    }


async def test_new_rows_go_in_once_and_clashing_pairs_are_skipped(harness_factory, stack):
    harness, table = await _loaded(harness_factory, stack)
    try:
        rows = [_row(f"u{i}", f"m{i % 7}", stars=1 + i % 5) for i in range(2500)]
        async with harness.db.transaction() as session:
            inserted = await insert_new(session, table, rows)
        assert inserted == {r["id"] for r in rows}

        again = [*rows[:10], _row("u1", "m1"), _row("new", "m1")]  # same ids; same pair
        async with harness.db.transaction() as session:
            inserted = await insert_new(session, table, again)
        assert inserted == {again[-1]["id"]}

        async with harness.db.sessions() as session:
            stored = (await session.execute(select(table).order_by(table.c.user_id))).all()
        assert len(stored) == 2501
        by_id = {row.id: row for row in stored}
        assert by_id[rows[4]["id"]].stars == 5
        assert by_id[rows[4]["id"]].source == "api"  # left out: the server default
    finally:
        await harness.infra.close()
        await harness.db.dispose()


async def test_stored_values_keep_their_types_and_instants(harness_factory, stack):
    harness, table = await _loaded(harness_factory, stack)
    try:
        madrid = timezone(timedelta(hours=2))
        rows = [
            _row(
                "ana", "m1", note="¡Qué buena!", created_at=datetime(2023, 5, 1, 14, tzinfo=madrid)
            ),
            _row("ben", "m1", note=None, created_at=datetime(2023, 5, 1, 12)),  # naive = UTC
        ]
        async with harness.db.transaction() as session:
            assert len(await insert_new(session, table, rows)) == 2
        async with harness.db.sessions() as session:
            stored = {row.user_id: row for row in (await session.execute(select(table))).all()}
        noon = datetime(2023, 5, 1, 12, tzinfo=UTC)
        assert stored["ana"].created_at == noon and stored["ana"].created_at.tzinfo is not None
        assert stored["ben"].created_at == noon
        assert stored["ana"].note == "¡Qué buena!" and stored["ben"].note is None
    finally:
        await harness.infra.close()
        await harness.db.dispose()
