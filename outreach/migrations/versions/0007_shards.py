"""messages.shard: the customer's hash bucket, so a day's dispatch can be split between workers

Revision ID: 0007
Revises: 0006

Rows planned before this revision get bucket 0 (they all fall in shard 0 of any shard count:
still sent exactly once, just not spread).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shard", sa.SmallInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("shard")
