"""users.language: the account's language for the web app and its emails

Revision ID: 7c1d2e3f4a5b
Revises: 32b4e7cb8102
Create Date: 2026-11-30 16:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "7c1d2e3f4a5b"
down_revision = "32b4e7cb8102"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A server default fills the existing rows, so SQLite and PostgreSQL both add it in place.
    op.add_column(
        "users", sa.Column("language", sa.String(length=5), server_default="es", nullable=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("language")
