"""decisions.release_at: a held decision's release time as a typed column, not text in ``detail``

Revision ID: 0014
Revises: 0013

Until now a held decision carried its release time as ``release=<ISO UTC>;`` at the start of the
free-text ``detail``, written in three places and parsed in three. The upgrade moves that part of
every existing ``detail`` into the column; the downgrade puts it back.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

decisions = sa.table(
    "decisions",
    sa.column("id", sa.BigInteger()),
    sa.column("detail", sa.Text()),
    sa.column("release_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("release_at", sa.DateTime(timezone=True), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(decisions.c.id, decisions.c.detail).where(decisions.c.detail.like("release=%"))
    ).all()
    for decision_id, detail in rows:
        release, _, rest = detail.partition(";")
        conn.execute(
            decisions.update()
            .where(decisions.c.id == decision_id)
            .values(
                release_at=_utc(datetime.fromisoformat(release.removeprefix("release="))), detail=rest or None
            )
        )


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(decisions.c.id, decisions.c.detail, decisions.c.release_at).where(
            decisions.c.release_at.is_not(None)
        )
    ).all()
    for decision_id, detail, release_at in rows:
        at = _utc(release_at)
        text = f"release={at.isoformat()}" + (f";{detail}" if detail else "")
        conn.execute(decisions.update().where(decisions.c.id == decision_id).values(detail=text))
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("release_at")


def _utc(value: datetime) -> datetime:
    """SQLite stores naive UTC; PostgreSQL gives aware values: one aware UTC form for both."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
