"""explore indexes: every sort order within a category, and category totals of a match set

Revision ID: 3b9f2c7d41a8
Revises: e7e5e6e3d03d
Create Date: 2026-11-28 01:30:00.000000
"""

from alembic import op

revision = "3b9f2c7d41a8"
down_revision = "e7e5e6e3d03d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # /explore with a category walks that category's rows in the requested order and stops
    # at the page (newest already had ix_movies_category_created).
    op.create_index("ix_movies_category_title", "movies", ["category_key", "title_key", "seq"])
    op.create_index(
        "ix_movies_category_rating",
        "movies",
        ["category_key", "rating_average", "rating_count", "seq"],
    )
    if op.get_bind().dialect.name == "sqlite":
        # Per-category totals of an FTS5 match set look up each matching rowid's category:
        # from this narrow covering index instead of the wide table rows.
        op.create_index("ix_movies_seq_category", "movies", ["seq", "category_key"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_movies_seq_category", table_name="movies")
    op.drop_index("ix_movies_category_rating", table_name="movies")
    op.drop_index("ix_movies_category_title", table_name="movies")
