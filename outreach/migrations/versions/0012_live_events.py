"""live_events: the payment events the live lane acted on, one row per event id

Revision ID: 0012
Revises: 0011

The key that makes the live lane's consumption idempotent (outreach/live/tables.py): a redelivered
or replayed event finds its row and creates no second candidate, decision or message.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_events",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_live_events")),
    )
    op.create_index(op.f("ix_live_events_customer_id"), "live_events", ["customer_id"])
    op.create_index(op.f("ix_live_events_received_at"), "live_events", ["received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_live_events_received_at"), table_name="live_events")
    op.drop_index(op.f("ix_live_events_customer_id"), table_name="live_events")
    op.drop_table("live_events")
