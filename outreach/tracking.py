"""Delivery tracking: store each provider event once, move its message forward, honour objections.

Events come normalised (channels.events.DeliveryEvent) from the webhook parsers or from an
adapter's reconcile look-up. Each is stored exactly once: by the provider's event id, unique per
provider, when the event has one; else by a hash of its content. Events with their own ids are
never collapsed by content: two opens of one email in the same second are two events. A stored
event moves its ledger message only forward, through ledger.transition, so a late ``sent`` after
``delivered`` changes nothing. Events that match no message are kept (with ``message_id`` NULL),
counted and logged, and matched again later by ``replay``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from channels.events import DeliveryEvent, EventType, Reason
from outreach import consent, ledger
from outreach.db import as_utc
from outreach.models import Customer, DeliveryEventRecord, Message
from outreach.pii import mask_email, mask_phone, scrub
from outreach.statuses import MessageStatus

log = logging.getLogger("outreach.tracking")

# the ledger status each event proves; events not listed (opened by themselves, unknown) prove nothing
LEDGER_STATUS: dict[EventType, str] = {
    EventType.QUEUED: MessageStatus.SENT,
    EventType.SENT: MessageStatus.SENT,
    EventType.DEFERRED: MessageStatus.SENT,
    EventType.DELIVERED: MessageStatus.DELIVERED,
    EventType.OPENED: MessageStatus.DELIVERED,  # an open or click cannot happen to an undelivered message
    EventType.CLICKED: MessageStatus.DELIVERED,
    EventType.COMPLAINED: MessageStatus.DELIVERED,
    EventType.OPTED_OUT: MessageStatus.DELIVERED,
    EventType.REPLIED: MessageStatus.DELIVERED,
    EventType.UNDELIVERED: MessageStatus.UNDELIVERED,
    EventType.FAILED: MessageStatus.FAILED,
    EventType.REJECTED: MessageStatus.FAILED,
    EventType.BOUNCED: MessageStatus.BOUNCED,
}
# events move only messages the provider has (or may have): never one the dispatcher still holds
# in ``sending`` (its own record_sent comes next; ``replay`` applies the event after that)
MOVABLE_FROM = (MessageStatus.UNKNOWN, MessageStatus.SENT)
# events that say the address itself is dead, not just this message
DEAD_ADDRESS = {
    (EventType.BOUNCED, Reason.BOUNCED),
    (EventType.REJECTED, Reason.BOUNCED),
    (EventType.REJECTED, Reason.INVALID),
    (EventType.FAILED, Reason.INVALID),
    (EventType.UNDELIVERED, Reason.INVALID),
}
CHANNEL_SCOPE = {"sms": "sms", "email": "email", "letter": "letter", "call": "phone"}


@dataclass
class IngestResult:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    matched: int = 0
    unmatched: int = 0
    moved: int = 0
    consent_changes: int = 0
    addresses_invalidated: int = 0
    unmatched_ids: list[int] = field(default_factory=list)  # delivery_events.id of stored orphans

    def add(self, other: IngestResult) -> None:
        for name in ("received", "stored", "duplicates", "matched", "unmatched", "moved"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.consent_changes += other.consent_changes
        self.addresses_invalidated += other.addresses_invalidated
        self.unmatched_ids.extend(other.unmatched_ids)


def storable(value):
    """Text as both databases take it: PostgreSQL refuses NUL characters in text and parameters."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, Mapping):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def _storable_event(event: DeliveryEvent) -> DeliveryEvent:
    return replace(
        event,
        message_id=storable(event.message_id),
        provider_message_id=storable(event.provider_message_id),
        description=storable(event.description),
        event_id=storable(event.event_id),
        metadata=storable(event.metadata),
        raw=storable(event.raw),
    )


def _cut(value: str | None, length: int) -> str | None:
    return value[:length] if value else value


def content_key(event: DeliveryEvent) -> str:
    """A hash of what the event says, leaving out the provider's own event id."""
    raw = {k: v for k, v in event.raw.items() if event.event_id is None or v != event.event_id}
    doc = {
        "provider": event.provider,
        "type": str(event.type),
        "message": event.message_id,
        "provider_message": event.provider_message_id,
        "at": event.timestamp.isoformat(),
        "reason": event.reason and str(event.reason),
        "raw": raw,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _identity(row: Mapping) -> tuple[str, str, str]:
    """What makes a stored event unique (the table's two unique keys): its provider's id, else its content."""
    if row["provider_event_id"] is not None:
        return (row["provider"], "id", row["provider_event_id"])
    return (row["provider"], "content", row["content_key"])


def _insert_ignoring_duplicates(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(DeliveryEventRecord).on_conflict_do_nothing()


def _as_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


def _match(session: Session, events: Sequence[DeliveryEvent]) -> list[Message | None]:
    """The ledger message of each event: by our id when the event carries it, else by provider id."""
    wanted_ids = {i for e in events if (i := _as_int(e.message_id)) is not None}
    by_id = (
        {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(wanted_ids)))}
        if wanted_ids
        else {}
    )
    provider_ids = {e.provider_message_id for e in events if e.provider_message_id}
    by_provider: dict[tuple[str, str], Message] = {}
    if provider_ids:
        for message in session.scalars(select(Message).where(Message.provider_id.in_(provider_ids))):
            by_provider[(message.channel, message.provider_id or "")] = message
    matched: list[Message | None] = []
    for event in events:
        message = by_id.get(_as_int(event.message_id) or 0)
        if message is None or message.channel != event.channel:
            message = by_provider.get((event.channel, event.provider_message_id or ""))
        matched.append(message)
    return matched


def _row(event: DeliveryEvent, message: Message | None, received_at: datetime) -> dict:
    return {
        "message_id": message.id if message else None,
        "channel": event.channel,
        "provider": event.provider,
        "provider_event_id": _cut(event.event_id, 128) or None,
        "provider_message_id": _cut(event.provider_message_id, 100),
        # content identifies only events without an id of their own
        "content_key": None if event.event_id else content_key(event),
        "event_type": str(event.type),
        "reason": str(event.reason) if event.reason else None,
        "error_code": (event.metadata.get("error_code") or "")[:40] or None,
        "description": event.description,
        "occurred_at": event.timestamp,
        "received_at": received_at,
        "raw": dict(event.raw) or None,
    }


def ingest(session: Session, events: Iterable[DeliveryEvent]) -> IngestResult:
    """Store new events, move their messages forward, apply consent and contact-data effects."""
    events = [_storable_event(event) for event in events]
    result = IngestResult(received=len(events))
    if not events:
        return result
    received_at = datetime.now(UTC)
    messages = _match(session, events)
    # drop repeats inside the batch first, so the counts are exact
    seen: set[tuple[str, str]] = set()
    batch: list[tuple[DeliveryEvent, Message | None, dict]] = []
    for event, message in zip(events, messages, strict=True):
        row = _row(event, message, received_at)
        key = _identity(row)
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        batch.append((event, message, row))
    if not batch:
        return result
    stmt = _insert_ignoring_duplicates(session).returning(
        DeliveryEventRecord.id,
        DeliveryEventRecord.provider,
        DeliveryEventRecord.provider_event_id,
        DeliveryEventRecord.content_key,
    )
    inserted = {
        _identity({"provider": provider, "provider_event_id": event_id, "content_key": key}): rid
        for rid, provider, event_id, key in session.execute(stmt, [row for _, _, row in batch])
    }
    fresh: list[tuple[DeliveryEvent, Message | None]] = []
    for event, message, row in batch:
        rid = inserted.get(_identity(row))
        if rid is None:
            result.duplicates += 1
            continue
        result.stored += 1
        fresh.append((event, message))
        if message is None:
            result.unmatched += 1
            result.unmatched_ids.append(rid)
            log.warning(
                "event matches no message: provider=%s type=%s provider_message_id=%s recipient=%s",
                event.provider,
                event.type,
                event.provider_message_id,
                _masked(event.metadata.get("recipient")),
            )
        else:
            result.matched += 1
    result.moved = _advance(session, [(e, m) for e, m in fresh if m is not None])
    for event, message in fresh:
        result.consent_changes += _apply_consent(session, event, message)
        result.addresses_invalidated += _apply_dead_address(session, event, message)
    return result


def _advance(session: Session, pairs: Sequence[tuple[DeliveryEvent, Message]]) -> int:
    """Move each message to the furthest status its new events prove; ties go to the earliest event."""
    best: dict[int, tuple[str, DeliveryEvent]] = {}
    for event, message in sorted(pairs, key=lambda pair: pair[0].timestamp):
        target = LEDGER_STATUS.get(event.type)
        if target is None:
            continue
        current = best.get(message.id)
        if current is None or ledger.RANK[target] > ledger.RANK[current[0]]:
            best[message.id] = (target, event)
    messages = {m.id: m for _, m in pairs}
    plain: dict[str, list[int]] = {}
    moved = 0
    for mid, (target, event) in best.items():
        values = _values_for(messages[mid], target, event)
        if values:  # failures carry their own error text, first provider ids: one by one
            moved += ledger.transition(
                session, [mid], target, expected=MOVABLE_FROM, detail=_detail(event), **values
            )
        else:
            plain.setdefault(target, []).append(mid)
    for target, ids in plain.items():
        moved += ledger.transition(session, ids, target, expected=MOVABLE_FROM, detail="provider event")
    return moved


def _values_for(message: Message, target: str, event: DeliveryEvent) -> dict[str, object]:
    values: dict[str, object] = {}
    if message.provider_id is None and event.provider_message_id:
        values.update(provider=event.provider, provider_id=_cut(event.provider_message_id, 100))
    if message.sent_at is None and target in (
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.BOUNCED,
    ):
        values["sent_at"] = event.timestamp  # an ``unknown`` message: the provider's word dates it
    if target in (MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.BOUNCED):
        code = event.metadata.get("error_code") or (str(event.reason) if event.reason else str(event.type))
        values.update(last_error_code=code[:40], last_error=scrub(event.description or str(event.type)))
    return values


def _detail(event: DeliveryEvent) -> str:
    return f"{event.provider} {event.type}" + (f" ({event.reason})" if event.reason else "")


def _masked(recipient: str | None) -> str:
    if not recipient:
        return "-"
    return mask_email(recipient) if "@" in recipient else mask_phone(recipient)


def _customers_for(session: Session, event: DeliveryEvent, message: Message | None) -> list[str]:
    """Whose contact this event is about: the message's customer, else whoever has that address."""
    if message is not None:
        return [message.customer_id]
    recipient = event.metadata.get("recipient")
    if not recipient:
        return []
    column = Customer.email if event.channel == "email" else Customer.mobile
    return list(session.scalars(select(Customer.customer_id).where(column == recipient)))


def _apply_consent(session: Session, event: DeliveryEvent, message: Message | None) -> int:
    choice = event.metadata.get("consent")
    if choice is None and event.channel == "sms" and event.metadata.get("error_code") == "21610":
        # Twilio refused: the recipient sent STOP to Twilio earlier; make our registry agree
        choice = "opt_out"
    if choice not in consent.CHOICES:
        return 0
    source = event.metadata.get("consent_source") or f"{event.provider}:{event.type}"
    scope = CHANNEL_SCOPE.get(event.channel, event.channel)
    changed = 0
    for customer_id in _customers_for(session, event, message):
        if _latest_choice(session, customer_id, scope) != choice:
            actor = consent.Actor("provider", event.provider, event.event_id)
            consent.record(session, customer_id, scope, choice, source[:64], at=event.timestamp, actor=actor)
            changed += 1
    return changed


def _latest_choice(session: Session, customer_id: str, scope: str) -> str | None:
    return consent.current(session, customer_id).choices.get(scope)


def _apply_dead_address(session: Session, event: DeliveryEvent, message: Message | None) -> int:
    """A hard bounce marks the address invalid, if the customer still has that address."""
    if (event.type, event.reason) not in DEAD_ADDRESS or event.channel not in ("email", "sms"):
        return 0
    customers = _customers_for(session, event, message)
    if not customers:
        return 0
    recipient = event.metadata.get("recipient")
    if event.channel == "email":
        stmt = update(Customer).where(Customer.customer_id.in_(customers)).values(email_valid=False)
        if recipient:
            stmt = stmt.where(Customer.email == recipient)
    else:
        stmt = update(Customer).where(Customer.customer_id.in_(customers)).values(mobile_valid=False)
        if recipient:
            stmt = stmt.where(Customer.mobile == recipient)
    return session.execute(stmt).rowcount or 0


def replay(
    session: Session, message_ids: Sequence[int] | None = None, orphans_since: timedelta = timedelta(days=7)
) -> IngestResult:
    """Apply stored events that could not move their message when they came.

    A callback can beat the dispatcher's own bookkeeping: it arrives while the message is still
    ``sending`` (stored, linked, not applied) or before its provider id is recorded (stored as an
    orphan). The dispatcher calls this for the ids it has just recorded; the reconcile flow calls
    it for everything. Orphans are matched again by provider message id. Consent effects were
    applied on arrival and are not repeated.
    """
    result = IngestResult()
    orphan_filter = [
        DeliveryEventRecord.message_id.is_(None),
        DeliveryEventRecord.provider_message_id.is_not(None),
        DeliveryEventRecord.received_at >= datetime.now(UTC) - orphans_since,
    ]
    if message_ids is not None:
        message_ids = list(message_ids)
        if not message_ids:
            return result
        provider_ids = select(Message.provider_id).where(Message.id.in_(message_ids))
        orphan_filter.append(DeliveryEventRecord.provider_message_id.in_(provider_ids))
    orphans = session.scalars(select(DeliveryEventRecord).where(*orphan_filter)).all()
    if orphans:
        events = [_from_record(record) for record in orphans]
        for record, message in zip(orphans, _match(session, events), strict=True):
            if message is not None:
                record.message_id = message.id
                result.matched += 1
        session.flush()
    # only events that say more than the message's status: a "sent" message's own "sent" event is old news
    beyond_sent = [
        str(kind)
        for kind, status in LEDGER_STATUS.items()
        if ledger.RANK[status] > ledger.RANK[MessageStatus.SENT]
    ]
    stmt = (
        select(DeliveryEventRecord, Message)
        .join(Message, Message.id == DeliveryEventRecord.message_id)
        .where(
            or_(
                Message.status == MessageStatus.UNKNOWN,
                and_(Message.status == MessageStatus.SENT, DeliveryEventRecord.event_type.in_(beyond_sent)),
            )
        )
    )
    if message_ids is not None:
        stmt = stmt.where(Message.id.in_(message_ids))
    pairs = [(_from_record(record), message) for record, message in session.execute(stmt)]
    result.moved = _advance(session, pairs)
    return result


def _from_record(record: DeliveryEventRecord) -> DeliveryEvent:
    raw = record.raw or {}
    return DeliveryEvent(
        type=_enum(EventType, record.event_type) or EventType.UNKNOWN,
        channel=record.channel,
        provider=record.provider,
        message_id=str(record.message_id) if record.message_id else None,
        provider_message_id=record.provider_message_id,
        timestamp=as_utc(record.occurred_at),
        reason=_enum(Reason, record.reason),
        description=record.description,
        event_id=record.provider_event_id,
        metadata={"error_code": record.error_code} if record.error_code else {},
        raw=raw,
    )


def _enum(kind, value: str | None):
    try:
        return kind(value) if value is not None else None
    except ValueError:
        return None


def unmatched_events(session: Session, since: datetime | None = None) -> list[DeliveryEventRecord]:
    """Stored events no ledger message claims: to report, never to drop."""
    stmt = select(DeliveryEventRecord).where(DeliveryEventRecord.message_id.is_(None))
    if since is not None:
        stmt = stmt.where(DeliveryEventRecord.received_at >= since)
    return list(session.scalars(stmt.order_by(DeliveryEventRecord.id)))
