"""The rendered content of each message: stored before the hand-off to the channel, shown by ``explain``.

The dispatcher writes one row per message it is about to send (one bulk statement per batch, in the
transaction that records the batch's render failures), so what went out is on record even when the
process dies mid-send. A message sent again after reconciliation gets its row replaced: delete then
insert in one transaction, the same on SQLite and PostgreSQL (a message is claimed by one worker at a
time, so no two transactions write the same row).

The content is personal data: it goes to the database and to the operator's own screen, never to logs,
Prefect artifacts or run names. ``purge`` deletes it after the retention period.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.orm import Session

from channels.base import OutboundMessage
from outreach.db import session_scope
from outreach.models import Message, MessageContent

# keys the dispatcher puts in OutboundMessage.metadata next to the rendered parts
TEMPLATE_KEY = "template"
DIGEST_KEY = "template_digest"
NOTE_KEY = "template_note"


def content_sha256(subject: str | None, body: str, html: str | None) -> str:
    """sha256 over the parts as stored (UTF-8, a NUL between parts; a missing part counts as empty)."""
    sha = hashlib.sha256()
    for part in (subject or "", body, html or ""):
        sha.update(part.encode("utf-8") + b"\0")
    return sha.hexdigest()


def row_for(message: OutboundMessage, rendered_at: datetime) -> dict:
    meta = message.metadata
    return {
        "message_id": int(message.message_id),
        "channel": message.channel,
        "language": message.language,
        "language_note": (meta.get(NOTE_KEY) or None),
        "template": meta.get(TEMPLATE_KEY, ""),
        "template_digest": meta.get(DIGEST_KEY, ""),
        "subject": message.subject,
        "body": message.body,
        "html": message.html,
        "content_sha256": content_sha256(message.subject, message.body, message.html),
        "rendered_at": rendered_at,
    }


def record(
    session: Session,
    messages: Sequence[OutboundMessage],
    unrendered: Iterable[int] = (),
    at: datetime | None = None,
) -> int:
    """Store (or replace) the content of ``messages``: one delete and one bulk insert. Messages in
    ``unrendered`` (their templates failed this time) lose an earlier attempt's content: it is not
    what this attempt would have sent."""
    at = at or datetime.now(UTC)
    rows = [row_for(m, at) for m in messages]
    stale = [r["message_id"] for r in rows] + list(unrendered)
    if stale:
        session.execute(delete(MessageContent).where(MessageContent.message_id.in_(stale)))
    if rows:
        session.execute(insert(MessageContent), rows)
    return len(rows)


def load(session: Session, message_ids: Iterable[int]) -> dict[int, MessageContent]:
    ids = list(message_ids)
    if not ids:
        return {}
    found = session.scalars(select(MessageContent).where(MessageContent.message_id.in_(ids)))
    return {c.message_id: c for c in found}


def purge(engine: Engine, older_than_days: int, today: date | None = None) -> int:
    """Delete the content of messages planned more than ``older_than_days`` days before ``today``
    (the ledger row, its transitions and events stay). Returns how many rows went."""
    cutoff = (today or datetime.now(UTC).date()) - timedelta(days=older_than_days)
    old = select(Message.id).where(Message.run_date < cutoff)
    with session_scope(engine) as session:
        result = session.execute(delete(MessageContent).where(MessageContent.message_id.in_(old)))
        return result.rowcount or 0


def html_summary(content: MessageContent) -> str | None:
    """ "1,703 bytes, sha256 ab12…" for an HTML part, without its text."""
    if content.html is None:
        return None
    data = content.html.encode("utf-8")
    return f"{len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}"


__all__ = ["content_sha256", "html_summary", "load", "purge", "record", "row_for"]
