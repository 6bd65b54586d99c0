"""Partial indexes over the outbox rows still open: the claim reads the channel's pending
rows in id order (``ix_outbox_due``) and asks, per candidate, whether an earlier row to the
same destination is pending or sending (``ix_outbox_open_destination``). Sent rows, the
great majority after a large edition, are in neither, so a claim costs the same at the
100,000th message as at the first and the planner has no cheaper-looking wrong path.

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
OPEN = sa.text("status IN ('pending', 'sending')")


def upgrade() -> None:
    op.create_index("ix_outbox_due", "outbox", ["channel_id", "id"], sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_index("ix_outbox_open_destination", "outbox", ["channel_id", "destination", "id"],
                    sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index("ix_outbox_open_destination", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
