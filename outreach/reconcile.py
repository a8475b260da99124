"""Reconciliation: messages stuck in ``sent`` or ``unknown`` are looked up at the provider, or flagged.

Three steps, cheapest first: apply events already stored (callbacks that beat the dispatcher's
own bookkeeping, orphans now matchable); ask each channel adapter that offers
``reconcile(messages, sent_after) -> Iterable[DeliveryEvent]`` and ingest what it says, through
the same path as webhooks; flag what is still open past ``flag_after`` so operators see it.
Nothing here resends: an ``unknown`` message stays unknown until a provider says otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, update

from channels import load_channel
from channels.base import OutboundMessage
from channels.errors import ChannelError
from outreach import tracking
from outreach.config import Settings
from outreach.db import session_scope
from outreach.models import Customer, Message

log = logging.getLogger("outreach.reconcile")
STUCK = ("sent", "unknown")
TRACKED_CHANNELS = ("sms", "email")  # letters and calls get no provider events to wait for
FLAG_CODE = "stuck"
CHUNK = 500


@dataclass
class ReconcileReport:
    stuck: int = 0
    replayed: int = 0  # moved by events that were already stored
    looked_up: int = 0  # asked the provider about
    moved: int = 0  # moved by the provider's answers
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
    """What an adapter needs to look a message up: our id, its provider id, the address we used."""
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
                body="",
                metadata={"provider_message_id": m.provider_id or "", "status": m.status},
            )
        )
    return queries


def _default_adapters(settings: Settings) -> Callable[[str], object]:
    return lambda kind: load_channel(kind, settings.backend_for(kind))


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
        by_channel: dict[str, list[Message]] = {}
        for message in stuck:
            by_channel.setdefault(message.channel, []).append(message)
        queries = {ch: _queries(session, msgs) for ch, msgs in by_channel.items()}
        # the provider lists by send time: from the earliest hand-off among them, with slack for clocks
        sent_after = {
            ch: min(_aware(m.claimed_at or m.sent_at or m.created_at) for m in msgs) - timedelta(hours=1)
            for ch, msgs in by_channel.items()
        }
    for channel, channel_queries in queries.items():
        report.looked_up += _look_up(
            engine, channel, channel_queries, sent_after[channel], adapter_for, report
        )
    with session_scope(engine) as session:
        report.flagged = _flag(session, find_stuck(session, now - flag_after, channels), now)
        report.unmatched_events = len(tracking.unmatched_events(session, since=now - timedelta(days=1)))
    log.info("reconcile", extra={k: v for k, v in asdict(report).items() if k != "not_looked_up"})
    return report


def _look_up(engine, channel, queries, sent_after, adapter_for, report: ReconcileReport) -> int:
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
                events = list(look_up(chunk, sent_after))
            except ChannelError as exc:  # one failed look-up must not stop the others
                report.not_looked_up[channel] = f"look-up failed: {exc}"
                continue
            asked += len(chunk)
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
