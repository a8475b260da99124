"""Reconciliation: messages stuck in ``sent`` or ``unknown`` are settled where possible, else flagged.

Cheapest first:

1. apply events already stored: callbacks that beat the dispatcher's own bookkeeping, orphans
   that now match a message (tracking.replay);
2. ``unknown`` messages (the request may have left): ask the channel adapter, where it offers
   ``reconcile(messages, sent_after) -> {message_id: SendResult | None}`` (Twilio lists messages
   to the number, SendGrid searches its activity feed for our ``outreach_id``). A message found
   there moves to ``sent`` with the provider's id, through the same ingest path as a webhook;
   one not found stays ``unknown``: this flow never resends (outreach.sending decides that,
   with its settle time, while a day is being sent);
3. what is still open past ``flag_after`` (``sent`` with no final callback, ``unknown`` nobody
   could settle) is flagged: ``last_error_code = "stuck"``, status unchanged, for operators.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, update

from channels import load_channel
from channels.base import OutboundMessage, SendResult
from channels.errors import ChannelError
from channels.events import DeliveryEvent, EventType
from outreach import tracking
from outreach.config import Settings
from outreach.db import session_scope
from outreach.models import Customer, Message
from outreach.tracking import LEDGER_STATUS

log = logging.getLogger("outreach.reconcile")
STUCK = ("sent", "unknown")
TRACKED_CHANNELS = ("sms", "email")  # letters and calls get no provider events to wait for
FLAG_CODE = "stuck"
CHUNK = 500
STATUS_EVENTS = {str(kind) for kind in LEDGER_STATUS}  # SendResult.status values we understand


@dataclass
class ReconcileReport:
    stuck: int = 0
    replayed: int = 0  # moved by events that were already stored
    looked_up: int = 0  # unknown messages asked about at the provider
    moved: int = 0  # moved by the provider's answers
    not_found: int = 0  # the provider has no record (yet): left unknown, never resent from here
    flagged: int = 0  # still open past flag_after: marked for operators
    unmatched_events: int = 0
    not_looked_up: dict[str, str] = field(default_factory=dict)  # channel -> why not

    def records(self) -> list[dict[str, object]]:
        doc = asdict(self)
        skipped = doc.pop("not_looked_up")
        rows: list[dict[str, object]] = [{"item": key, "value": value} for key, value in doc.items()]
        return rows + [{"item": f"not looked up: {ch}", "value": why} for ch, why in sorted(skipped.items())]


def find_stuck(session, older_than: datetime, channels: Sequence[str] = TRACKED_CHANNELS) -> list[Message]:
    since = func.coalesce(Message.sent_at, Message.updated_at)
    stmt = (
        select(Message)
        .where(Message.status.in_(STUCK), Message.channel.in_(list(channels)), since < older_than)
        .order_by(Message.id)
    )
    return list(session.scalars(stmt))


def _queries(session, messages: Sequence[Message]) -> list[OutboundMessage]:
    """What an adapter needs to find a message: our id, the address we used, the run date."""
    ids = {m.customer_id for m in messages}
    contacts = {
        cid: (mobile, email)
        for cid, mobile, email in session.execute(
            select(Customer.customer_id, Customer.mobile, Customer.email).where(Customer.customer_id.in_(ids))
        )
    }
    queries = []
    for m in messages:
        mobile, email = contacts.get(m.customer_id, (None, None))
        queries.append(
            OutboundMessage(
                message_id=str(m.id),
                channel=m.channel,
                customer_id=m.customer_id,
                offer_code=m.offer_code,
                run_date=m.run_date,
                to=(email if m.channel == "email" else mobile) or "",
                body="",  # not rebuilt: Twilio then matches any message from us to that number
            )
        )
    return queries


def _found_events(channel: str, provider: str, found: Mapping[str, SendResult | None], at: datetime):
    """The adapter's answer as events, so it takes the webhook path (store once, forward only)."""
    events = []
    for message_id, result in found.items():
        if result is None:
            continue
        kind = EventType(result.status) if result.status in STATUS_EVENTS else EventType.SENT
        events.append(
            DeliveryEvent(
                type=kind,
                channel=channel,
                provider=provider,
                message_id=message_id,
                provider_message_id=result.provider_message_id,
                timestamp=at,
                description=f"found by reconciliation at {provider}",
                event_id=f"reconcile:{message_id}:{kind}",
            )
        )
    return events


def _default_adapters(settings: Settings) -> Callable[[str], object]:
    return lambda kind: load_channel(kind, settings.backend_for(kind), outbox_dir=settings.outbox_dir)


def reconcile(
    engine: Engine,
    settings: Settings,
    *,
    older_than: timedelta = timedelta(hours=2),
    flag_after: timedelta = timedelta(hours=24),
    channels: Sequence[str] = TRACKED_CHANNELS,
    adapter_for: Callable[[str], object] | None = None,
    now: datetime | None = None,
) -> ReconcileReport:
    now = now or datetime.now(UTC)
    adapter_for = adapter_for or _default_adapters(settings)
    report = ReconcileReport()
    with session_scope(engine) as session:
        report.replayed = tracking.replay(session).moved
    with session_scope(engine) as session:
        stuck = find_stuck(session, now - older_than, channels)
        report.stuck = len(stuck)
        in_doubt: dict[str, list[Message]] = {}
        for message in stuck:
            if message.status == "unknown":
                in_doubt.setdefault(message.channel, []).append(message)
        queries = {ch: _queries(session, msgs) for ch, msgs in in_doubt.items()}
        # the provider lists by send time: from the earliest hand-off among them, with slack for clocks
        sent_after = {
            ch: min(_aware(m.claimed_at or m.updated_at or m.created_at) for m in msgs) - timedelta(hours=1)
            for ch, msgs in in_doubt.items()
        }
    for channel, channel_queries in queries.items():
        report.looked_up += _look_up(
            engine, channel, channel_queries, sent_after[channel], adapter_for, report, now
        )
    with session_scope(engine) as session:
        report.flagged = _flag(session, find_stuck(session, now - flag_after, channels), now)
        report.unmatched_events = len(tracking.unmatched_events(session, since=now - timedelta(days=1)))
    log.info("reconcile", extra={k: v for k, v in asdict(report).items() if k != "not_looked_up"})
    return report


def _look_up(engine, channel, queries, sent_after, adapter_for, report: ReconcileReport, now) -> int:
    try:
        adapter = adapter_for(channel)
    except (ChannelError, TypeError, ValueError) as exc:
        report.not_looked_up[channel] = f"adapter unavailable: {exc}"
        return 0
    try:
        look_up = getattr(adapter, "reconcile", None)
        if look_up is None:
            report.not_looked_up[channel] = f"{type(adapter).__name__} offers no reconcile()"
            return 0
        asked = 0
        for start in range(0, len(queries), CHUNK):
            chunk = queries[start : start + CHUNK]
            try:
                found = look_up(chunk, sent_after)
            except ChannelError as exc:  # one failed look-up must not stop the others
                report.not_looked_up[channel] = f"look-up failed: {exc}"
                continue
            asked += len(chunk)
            report.not_found += sum(1 for q in chunk if found.get(q.message_id) is None)
            events = _found_events(channel, getattr(adapter, "provider", channel), found, now)
            with session_scope(engine) as session:
                report.moved += tracking.ingest(session, events).moved
        return asked
    finally:
        close = getattr(adapter, "close", None)
        if close:
            close()


def _flag(session, messages: Sequence[Message], now: datetime) -> int:
    """Mark messages still open: the status stays (nothing is assumed), the reason says why."""
    flagged = 0
    for message in messages:
        if message.last_error_code == FLAG_CODE:
            continue
        before = (
            f" (before: {message.last_error_code}: {message.last_error})" if message.last_error_code else ""
        )
        session.execute(
            update(Message)
            .where(Message.id == message.id)
            .values(
                last_error_code=FLAG_CODE,
                last_error=f"no final provider status by {now:%Y-%m-%d %H:%M} UTC{before}"[:2000],
            )
        )
        flagged += 1
    return flagged


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
