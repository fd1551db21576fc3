"""movie_projection.has_audio: whether the movie has sound (movie.* events' `has_audio`)

Revision ID: eb9d0072dd65
Revises: 40db6f7e69c6
Create Date: 2026-11-30 17:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "eb9d0072dd65"
down_revision = "40db6f7e69c6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, so a plain ADD COLUMN on both backends; rows projected before stay unknown
    # (null) until the movie's next event or catch-up.
    op.add_column("movie_projection", sa.Column("has_audio", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("movie_projection") as batch:
        batch.drop_column("has_audio")
