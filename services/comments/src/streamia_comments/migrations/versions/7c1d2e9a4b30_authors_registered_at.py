"""authors.registered_at: when the account was made (user.registered's time), so reports
count only from accounts old enough

Revision ID: 7c1d2e9a4b30
Revises: b5cc23f85cf4
Create Date: 2026-12-01 00:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "7c1d2e9a4b30"
down_revision = "b5cc23f85cf4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("authors", sa.Column("registered_at", sa.Float(), nullable=True))
    # Names projected before: the newest name event is no earlier than the registration, so
    # its time makes an account look younger, never older, than it is.
    op.execute("UPDATE authors SET registered_at = version")


def downgrade() -> None:
    with op.batch_alter_table("authors") as batch:
        batch.drop_column("registered_at")
