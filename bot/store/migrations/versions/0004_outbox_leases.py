"""Outbox rows are claimed in batches under a lease, by any number of workers: who holds a
row in ``sending`` and until when, and the indexes the batch claim and the per-destination
ordering read.

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_outbox_channel_status", "outbox", ["channel_id", "status", "id"])
    op.create_index("ix_outbox_channel_destination", "outbox", ["channel_id", "destination", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_channel_destination", table_name="outbox")
    op.drop_index("ix_outbox_channel_status", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
