"""poster provider: an uploaded cover can live in another store than the video

Revision ID: 8e4f0a6c93d1
Revises: 5c1d7e9a2b34
Create Date: 2026-11-30 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "8e4f0a6c93d1"
down_revision = "5c1d7e9a2b34"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch_alter_table), which would drop the FTS5 triggers on SQLite.
    op.add_column("movies", sa.Column("poster_provider", sa.String(length=20), nullable=True))


def downgrade() -> None:
    op.drop_column("movies", "poster_provider")
