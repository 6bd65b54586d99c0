"""Scheduled jobs remember when they last ran (``schedule_runs``); APScheduler's own job
table goes: next runs are computed from the last run, so an edited schedule or timezone
never loses an edition that fell due while the daemon was down.

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_runs",
        sa.Column("job_id", sa.String(length=200), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_schedule_runs")),
    )
    # What the old job store knew: an edition last ran when the channel's last edition was
    # built, a poll when the source was last polled.
    op.execute("INSERT INTO schedule_runs (job_id, last_run_at) "
               "SELECT 'edition:' || id, last_edition_at FROM channels WHERE last_edition_at IS NOT NULL")
    op.execute("INSERT INTO schedule_runs (job_id, last_run_at) "
               "SELECT 'poll:' || id, last_polled_at FROM sources WHERE last_polled_at IS NOT NULL")
    op.drop_index("ix_apscheduler_jobs_next_run_time", table_name="apscheduler_jobs")
    op.drop_table("apscheduler_jobs")


def downgrade() -> None:
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(191), nullable=False),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    op.create_index("ix_apscheduler_jobs_next_run_time", "apscheduler_jobs", ["next_run_time"])
    op.drop_table("schedule_runs")
