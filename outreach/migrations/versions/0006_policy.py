"""policy: covering index for the contact-history read

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # caps and cooldowns read (run_date, customer, offer, channel, status) of the last 90+ days:
    # a covering index turns that into an index-only range scan (1M rows: ~5 s -> ~1 s on SQLite)
    op.create_index(
        "ix_messages_contact_history",
        "messages",
        ["run_date", "customer_id", "offer_code", "channel", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_contact_history", table_name="messages")
