"""Subscribers get a life cycle and preferences, and one row per mailbox; articles keep
their image's alt text and size.

``active`` becomes ``status`` (pending, active, unsubscribed, bounced, complained) with when
and why it last changed; language, topics and frequency are per subscriber; addresses
match case-insensitively (``email_key``), so ``Dup@EX.ML`` and ``dup@ex.ml`` are one
reader. Rows that differed only in case are merged into the oldest (active if any of them
was). Every change is recorded in ``subscriber_events``.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("image_alt", sa.Text(), nullable=True))
        batch.add_column(sa.Column("image_width", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("image_height", sa.Integer(), nullable=True))
    op.create_table(
        "subscribers_new",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("topics", sa.JSON(), nullable=True),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("weekly_day", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_source", sa.String(24), nullable=False),
        sa.Column("soft_bounces", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("soft_window_start", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers_new"),
    )
    # One row per (channel, lower(email)): the oldest row keeps its id and token; it is
    # active if any of its case-variants was.
    op.execute("""
        INSERT INTO subscribers_new (id, channel_id, email, email_key, name, token, status, frequency,
                                     created_at, confirmed_at, status_changed_at, status_source, soft_bounces)
        SELECT s.id, s.channel_id, s.email, lower(s.email), s.name, s.token,
               CASE WHEN EXISTS (SELECT 1 FROM subscribers o WHERE o.channel_id = s.channel_id
                                 AND lower(o.email) = lower(s.email) AND o.active) THEN 'active'
                    ELSE 'unsubscribed' END,
               'daily', s.created_at, s.created_at, s.created_at, 'import', 0
        FROM subscribers s
        WHERE s.id = (SELECT min(o.id) FROM subscribers o WHERE o.channel_id = s.channel_id
                      AND lower(o.email) = lower(s.email))
    """)
    op.drop_table("subscribers")
    op.rename_table("subscribers_new", "subscribers")
    with op.batch_alter_table("subscribers") as batch:
        batch.create_unique_constraint("uq_subscribers_channel_email_key", ["channel_id", "email_key"])
        batch.create_unique_constraint("uq_subscribers_token", ["token"])
        batch.create_index("ix_subscribers_email_key", ["email_key"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE subscribers RENAME CONSTRAINT pk_subscribers_new TO pk_subscribers")
        # the ids were copied: the new sequence must continue after them
        op.execute("SELECT setval(pg_get_serial_sequence('subscribers', 'id'), "
                   "coalesce((SELECT max(id) FROM subscribers), 0) + 1, false)")
    op.create_table(
        "subscriber_events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("subscriber_id", Id, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("source", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE",
                                name="fk_subscriber_events_subscriber_id_subscribers"),
        sa.PrimaryKeyConstraint("id", name="pk_subscriber_events"),
    )
    op.create_index("ix_subscriber_events_subscriber_id", "subscriber_events", ["subscriber_id"])


def downgrade() -> None:
    raise NotImplementedError("0003 merged case-variants of addresses; it cannot be undone")
