"""plays: distinct viewers from the playback service (playback.started)

Revision ID: b71c4e2a9d05
Revises: 8e4f0a6c93d1
Create Date: 2026-11-30 16:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "b71c4e2a9d05"
down_revision = "8e4f0a6c93d1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch_alter_table), which would drop the FTS5 triggers on SQLite.
    op.add_column("movies", sa.Column("plays", sa.Integer(), server_default="0", nullable=False))
    op.create_index("ix_movies_plays", "movies", ["plays", "seq"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_movies_plays", table_name="movies")
    op.drop_column("movies", "plays")
