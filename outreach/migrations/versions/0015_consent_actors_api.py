"""consent_events: who changed it (actor, request id, writer's transaction); API clients; idempotency
keys; e-mailed objections

Revision ID: 0015
Revises: 0014

``consent_events.txid`` is the PostgreSQL transaction that wrote the row (xid8, no wrap-around):
the changes feed is ordered by (txid, id) and hands out only rows of transactions older than every
one still running, so a reader following that cursor never skips a row whose transaction commits
late. SQLite has one writer at a time: ids are in commit order there and the column stays empty.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor_kind", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("actor", sa.String(128), nullable=True))
        batch_op.add_column(sa.Column("request_id", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("txid", sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE consent_events SET txid = 0")  # earlier rows: first in the feed
        op.execute(
            "ALTER TABLE consent_events ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )
    op.create_index("ix_consent_feed", "consent_events", ["txid", "id"])
    op.create_table(
        "api_clients",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(24), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("rate_limit", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("name", name=op.f("uq_api_clients_name")),
        sa.UniqueConstraint("key_id", name=op.f("uq_api_clients_key_id")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("client_id", BigId, nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_idempotency_keys_client_id_api_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("client_id", "key", name=op.f("uq_idempotency_keys_client_id")),
    )
    op.create_table(
        "objection_mails",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mail_id", sa.String(200), nullable=True),
        sa.Column("sender", sa.String(254), nullable=True),
        sa.Column("subject", sa.String(200), nullable=True),
        sa.Column("spf", sa.String(32), nullable=True),
        sa.Column("dkim", sa.String(200), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("reason", sa.String(24), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=True),
        sa.Column("reply", sa.String(12), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objection_mails")),
        sa.UniqueConstraint("mail_id", name=op.f("uq_objection_mails_mail_id")),
    )
    op.create_index("ix_objection_mails_status", "objection_mails", ["status"])


def downgrade() -> None:
    op.drop_index("ix_objection_mails_status", table_name="objection_mails")
    op.drop_table("objection_mails")
    op.drop_table("idempotency_keys")
    op.drop_table("api_clients")
    op.drop_index("ix_consent_feed", table_name="consent_events")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_column("txid")
        batch_op.drop_column("request_id")
        batch_op.drop_column("actor")
        batch_op.drop_column("actor_kind")
