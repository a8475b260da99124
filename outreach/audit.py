"""The audit log: who changed what and when, append-only and tamper-evident.

Each entry's hash is SHA-256 over a canonical serialisation (sorted-key compact JSON) of its fields
and the previous entry's hash, so changing, deleting or inserting a row breaks the chain from that
point on, and ``verify`` names the first entry where it breaks. Appending takes a lock first (a
transaction-scoped advisory lock on PostgreSQL; the database write lock on SQLite), so two writers
cannot both read the same head and fork the chain. Entries name customers only by pseudonym and
carry no personal data, so erasure never has to rewrite history. Removing the newest entries
leaves a valid shorter chain: anchor the head (``outreach audit verify`` prints it) outside the
database to detect that too.
"""

from __future__ import annotations

import difflib
import getpass
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from outreach.db import as_utc
from outreach.models import AuditEntry
from outreach.pseudonym import pseudonym

GENESIS = "0" * 64
ADVISORY_LOCK_KEY = 0x6F7574726561  # "outrea": one application-wide lock id for the log's head


def canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _stamp(at: datetime) -> str:
    return as_utc(at).astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    seq: int, at: datetime, actor: str, action: str, subject: str | None, detail: dict, prev_hash: str
) -> str:
    fields = {
        "seq": seq,
        "at": _stamp(at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": detail,
        "prev": prev_hash,
    }
    return hashlib.sha256(canonical(fields)).hexdigest()


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    else:
        # a write statement takes SQLite's one write lock (like BEGIN IMMEDIATE) until commit
        session.execute(text("UPDATE audit_log SET seq = seq WHERE 0"))


def os_user() -> str:
    """The operating-system user who ran the command (the CLI has no logins of its own)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def default_actor() -> str:
    return f"operator:{os_user()}"


def append(
    session: Session,
    action: str,
    detail: dict | None = None,
    *,
    actor: str | None = None,
    customer_id: str | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Add one entry in the caller's transaction: it commits (or rolls back) with the change it records."""
    _lock(session)
    head = session.execute(
        select(AuditEntry.seq, AuditEntry.entry_hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq, prev = (head.seq + 1, head.entry_hash) if head else (1, GENESIS)
    at = at or datetime.now(UTC)
    actor = (actor or default_actor())[:100]
    subject = pseudonym(customer_id) if customer_id else None
    detail = json.loads(canonical(detail or {}))  # exactly what the JSON column will hand back
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        detail=detail,
        prev_hash=prev,
        entry_hash=entry_hash(seq, at, actor, action, subject, detail, prev),
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    head: str  # the last entry's hash: anchor it outside the database
    problem: str | None = None  # the first break, naming the entry


def verify(session: Session, batch: int = 10_000) -> Verdict:
    """Walk the chain in order; the first changed, missing or inserted entry is named."""
    prev, expected_seq, count = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            return Verdict(True, count, prev)
        for row in rows:
            if row.seq != expected_seq:
                return Verdict(False, count, prev, f"entry {expected_seq} is missing (next is {row.seq})")
            if row.prev_hash != prev:
                return Verdict(False, count, prev, f"entry {row.seq} does not follow entry {row.seq - 1}")
            recomputed = entry_hash(
                row.seq, row.at, row.actor, row.action, row.subject, row.detail, row.prev_hash
            )
            if recomputed != row.entry_hash:
                return Verdict(False, count, prev, f"entry {row.seq} was changed after it was written")
            prev, expected_seq, count = row.entry_hash, expected_seq + 1, count + 1
        last_seq = rows[-1].seq
        session.expunge_all()


def entries(
    session: Session,
    *,
    action: str | None = None,
    customer_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> Sequence[AuditEntry]:
    """The newest ``limit`` entries matching the filters, oldest first."""
    stmt = select(AuditEntry)
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action))
    if customer_id:
        stmt = stmt.where(AuditEntry.subject == pseudonym(customer_id))
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    rows = session.scalars(stmt.order_by(AuditEntry.seq.desc()).limit(limit)).all()
    return list(reversed(rows))


def record_config(
    session: Session, kind: str, name: str, definition: Any, *, actor: str | None = None
) -> bool:
    """Log a configuration file as loaded (offers, a campaign) when it differs from the last one logged.

    The entry carries the content hash, the content itself (canonical JSON: the base of the next
    diff) and the unified diff against the previous version. Returns whether an entry was added.
    """
    content = json.dumps(definition, sort_keys=True, ensure_ascii=False, indent=2, default=str) + "\n"
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
    action = f"{kind}.loaded"
    _lock(session)  # read the previous version under the lock, so two loads log one change once
    last = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == action, AuditEntry.detail["name"].as_string() == name)
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    ).first()
    if last is not None and last.detail.get("sha256") == digest:
        return False
    before = last.detail.get("content", "") if last is not None else ""
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            content.splitlines(keepends=True),
            fromfile=f"{name} (seq {last.seq})" if last is not None else "/dev/null",
            tofile=name,
        )
    )
    append(
        session,
        action,
        {"name": name, "sha256": digest, "diff": diff, "content": content},
        actor=actor or default_actor(),
    )
    return True


def contains(session: Session, head: str) -> bool:
    """Whether an entry with this hash is still in the log (a head anchored earlier)."""
    return session.scalar(select(AuditEntry.seq).where(AuditEntry.entry_hash == head)) is not None
