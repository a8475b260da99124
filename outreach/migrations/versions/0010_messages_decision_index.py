"""messages.decision_id index: planning finds the decisions that have no ledger row yet by key

Revision ID: 0010
Revises: 0009

``ledger.plan_messages`` (outreach.plan_write) asks, for every planned or held decision of the day,
whether a ledger row points at it. Without this index SQLite answers by scanning the ledger once
per decision, and PostgreSQL depends on the planner choosing a hash anti-join.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_decision_id", "messages", ["decision_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_decision_id", table_name="messages")
