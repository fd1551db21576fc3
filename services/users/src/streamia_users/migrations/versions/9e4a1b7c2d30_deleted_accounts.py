"""deleted_accounts: ids of deleted accounts, so a re-run import never brings one back

Revision ID: 9e4a1b7c2d30
Revises: 7c1d2e3f4a5b
Create Date: 2026-12-01 03:40:00.000000
"""

import sqlalchemy as sa
import streamia_kit.db
from alembic import op

revision = "9e4a1b7c2d30"
down_revision = "7c1d2e3f4a5b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deleted_accounts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("deleted_at", streamia_kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deleted_accounts")),
    )


def downgrade() -> None:
    op.drop_table("deleted_accounts")
