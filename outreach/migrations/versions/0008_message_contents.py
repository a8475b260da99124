"""message_contents: the rendered text of each message, stored before it is sent

Revision ID: 0008
Revises: 0007

A table of its own (one row per message, keyed by the message id) rather than columns on
``messages``: the ledger rows the dispatcher claims and updates stay narrow.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_contents",
        sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("language_note", sa.String(length=200), nullable=True),
        sa.Column("template", sa.String(length=120), nullable=False),
        sa.Column("template_digest", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("rendered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_contents_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_contents")),
    )


def downgrade() -> None:
    op.drop_table("message_contents")
