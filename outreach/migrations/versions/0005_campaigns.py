"""campaigns: definitions as synced, pause switch, assignments (control/treatment, variant), events

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("file", sa.String(length=255), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_campaigns")),
    )
    op.create_table(
        "campaign_assignments",
        sa.Column("id", BigId, nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=False),
        sa.Column("candidate_id", BigId, nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("offer_code", sa.String(length=40), nullable=False),
        sa.Column("assigned_on", sa.Date(), nullable=False),
        sa.Column("arm", sa.String(length=10), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=True),
        sa.Column("template", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["candidates.id"], name=op.f("fk_campaign_assignments_candidate_id_candidates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_assignments")),
        sa.UniqueConstraint("campaign", "customer_id", name=op.f("uq_campaign_assignments_campaign")),
        sa.UniqueConstraint("candidate_id", name=op.f("uq_campaign_assignments_candidate_id")),
    )
    with op.batch_alter_table("campaign_assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_assignments_campaign_day", ["campaign", "assigned_on"], unique=False
        )
    op.create_table(
        "campaign_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_events")),
    )
    with op.batch_alter_table("campaign_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_events_campaign"), ["campaign"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("campaign_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_events_campaign"))
    op.drop_table("campaign_events")
    with op.batch_alter_table("campaign_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_assignments_campaign_day")
    op.drop_table("campaign_assignments")
    op.drop_table("campaigns")
