"""Prefect flow ``content-retention`` (daily): delete stored message content past its retention.

The rendered text of each message is personal data kept so operators can see what a customer
received (``outreach explain``); after ``OUTREACH_CONTENT_RETENTION_DAYS`` it goes. The ledger
row, its transitions and delivery events stay. Thin: the work is ``outreach.contents.purge``.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from outreach import contents
from outreach.config import get_settings
from outreach.db import engine_for


@task(name="purge-message-content", persist_result=False)
def purge_content(older_than_days: int) -> int:
    return contents.purge(engine_for(get_settings().database_url), older_than_days)


@flow(name="content-retention")
def content_retention(older_than_days: int | None = None) -> dict[str, int]:
    days = older_than_days or get_settings().content_retention_days
    purged = purge_content(days)
    create_table_artifact(
        [{"retention_days": days, "contents_deleted": purged}],
        key="content-retention",
        description="Stored message content deleted after its retention period (counts only)",
    )
    return {"retention_days": days, "purged": purged}
