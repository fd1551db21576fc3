"""movie_projection.has_audio: whether the movie has sound (movie.* events' `has_audio`)

Revision ID: b5cc23f85cf4
Revises: 2f7e3166137e
Create Date: 2026-11-30 17:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "b5cc23f85cf4"
down_revision = "2f7e3166137e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, so a plain ADD COLUMN on both backends; rows projected before stay unknown
    # (null) until the movie's next event or catch-up.
    op.add_column("movie_projection", sa.Column("has_audio", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("movie_projection") as batch:
        batch.drop_column("has_audio")
