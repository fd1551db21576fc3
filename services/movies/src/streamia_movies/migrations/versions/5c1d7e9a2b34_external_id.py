"""external_id: the id a movie's media has at its provider (the monolith's cloudinaryPublicId)

Revision ID: 5c1d7e9a2b34
Revises: 3b9f2c7d41a8
Create Date: 2026-11-30 15:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "5c1d7e9a2b34"
down_revision = "3b9f2c7d41a8"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch_alter_table): on SQLite a batch recreates `movies` and
    # drops the FTS5 triggers of the initial revision.
    op.add_column("movies", sa.Column("external_id", sa.String(length=255), nullable=True))
    op.create_index("ix_movies_external_id", "movies", ["external_id"])


def downgrade() -> None:
    op.drop_index("ix_movies_external_id", table_name="movies")
    op.drop_column("movies", "external_id")
