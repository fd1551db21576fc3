"""poster provider: an uploaded cover can live in another store than the video

Revision ID: 5c1d7e9a2b64
Revises: 3b9f2c7d41a8
Create Date: 2026-11-30 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "5c1d7e9a2b64"
down_revision = "3b9f2c7d41a8"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("movies", sa.Column("poster_provider", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("movies") as batch:
        batch.drop_column("poster_provider")
