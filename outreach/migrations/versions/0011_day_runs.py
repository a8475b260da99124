"""day_runs: the run of a day in progress, so two runs of the same day never interleave

Revision ID: 0011
Revises: 0010

Two runs of one day at once inserted the same decisions and delivery events and ended in a raw
UniqueViolation (issue 13 §4.3). ``outreach.day_lock`` holds one row here per running day.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "day_runs",
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_date", name=op.f("pk_day_runs")),
    )


def downgrade() -> None:
    op.drop_table("day_runs")
