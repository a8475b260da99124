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
3. ``sent`` messages whose final callback never came (lost, or the webhook was down): ask the
   adapter for their current status, where it offers ``fetch_status(messages) ->
   StatusOutcome`` (Twilio fetches each message by SID, SendGrid reads the Email Activity API).
   Each answer is a DeliveryEvent and takes the webhook path too: stored once (Twilio's event id
   is the callback's own, SID plus status; SendGrid's ``activity:<msg_id>:<status>``), so a rerun
   or a late callback adds nothing; the message moves only forward (``delivered``,
   ``undelivered``, ``failed`` with the provider's error code); a status that is not final
   (queued, sent, processed) leaves it open. A message the provider has no record of (Twilio's
   404) is counted, never guessed about. A ``sent`` message without a provider id cannot be asked;
4. what is still open past ``flag_after`` (``sent`` with no final status, ``unknown`` nobody
   could settle) is flagged: ``last_error_code = "stuck"``, status unchanged, for operators.
   Providers are asked about a message for ``ask_for`` (7 days) after it was sent; after that it
   stays flagged and is only counted (``past_asking``), so the hourly work does not grow with an
   old backlog.

Channels whose adapter lacks a look-up (outbox, letters, calls) are named in the report's
``not_looked_up`` with the reason, as are failed look-ups (one failure never stops the others).
Stuck messages are read ``CHUNK`` at a time (by id), so a large backlog is never loaded at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, update

from channels.base import Capability, Channel, OutboundMessage, SendResult, SentMessage, StatusOutcome
from channels.errors import ChannelError
from channels.events import DeliveryEvent, EventType
from outreach import tracking
from outreach.channel_setup import open_channel
from outreach.config import Settings
from outreach.db import as_utc, session_scope
from outreach.models import Customer, Message
from outreach.statuses import MessageStatus
from outreach.tracking import LEDGER_STATUS

log = logging.getLogger("outreach.reconcile")
STUCK = (MessageStatus.SENT, MessageStatus.UNKNOWN)
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
    status_asked: int = 0  # sent messages whose current status was asked for
    status_fetched: int = 0  # ... and the provider answered with one
    finalised: int = 0  # ... which moved the message to a final status
    status_missing: int = 0  # ... the provider has no such message: left open
    status_failed: int = 0  # ... the look-up failed (see not_looked_up)
    flagged: int = 0  # still open past flag_after: marked for operators
    past_asking: int = 0  # open longer than ask_for: flagged, no longer asked about
    unmatched_events: int = 0
    not_looked_up: dict[str, str] = field(default_factory=dict)  # channel -> why not

    def records(self) -> list[dict[str, object]]:
        doc = asdict(self)
        skipped = doc.pop("not_looked_up")
        rows: list[dict[str, object]] = [{"item": key, "value": value} for key, value in doc.items()]
        return rows + [{"item": f"not looked up: {ch}", "value": why} for ch, why in sorted(skipped.items())]

    def note(self, channel: str, why: str) -> None:
        """Say why (part of) a channel was not looked up; each reason once."""
        current = self.not_looked_up.get(channel)
        if current is None:
            self.not_looked_up[channel] = why
        elif why not in current.split("; "):
            self.not_looked_up[channel] = f"{current}; {why}"


def _open_since():  # noqa: ANN202 - a SQL expression
    """When a message went quiet: its hand-off to the provider, else its last change."""
    return func.coalesce(Message.sent_at, Message.updated_at)


def _open_before(before: datetime, channels: Sequence[str]) -> list:
    """Messages still ``sent``/``unknown`` on ``channels`` that went quiet before ``before``."""
    return [Message.status.in_(STUCK), Message.channel.in_(list(channels)), _open_since() < before]


def find_stuck(
    session,
    older_than: datetime,
    channels: Sequence[str] = TRACKED_CHANNELS,
    *,
    after_id: int = 0,
    limit: int | None = None,
    not_before: datetime | None = None,
) -> list[Message]:
    """Open messages (``sent``/``unknown``) last touched before ``older_than`` (and not before
    ``not_before``), by id from ``after_id`` on, at most ``limit`` of them."""
    where = _open_before(older_than, channels) + [Message.id > after_id]
    if not_before is not None:
        where.append(_open_since() >= not_before)
    stmt = select(Message).where(*where).order_by(Message.id).limit(limit)
    return list(session.scalars(stmt))


def _contacts(session, messages: Sequence[Message]) -> dict[str, tuple[str | None, str | None]]:
    ids = {m.customer_id for m in messages}
    rows = session.execute(
        select(Customer.customer_id, Customer.mobile, Customer.email).where(Customer.customer_id.in_(ids))
    )
    return {cid: (mobile, email) for cid, mobile, email in rows}


def _address(message: Message, contacts: Mapping[str, tuple[str | None, str | None]]) -> str:
    mobile, email = contacts.get(message.customer_id, (None, None))
    return (email if message.channel == "email" else mobile) or ""


def _queries(session, messages: Sequence[Message]) -> list[OutboundMessage]:
    """What an adapter needs to find a message: our id, the address we used, the run date."""
    contacts = _contacts(session, messages)
    return [
        OutboundMessage(
            message_id=str(m.id),
            channel=m.channel,
            customer_id=m.customer_id,
            offer_code=m.offer_code,
            run_date=m.run_date,
            to=_address(m, contacts),
            body="",  # not rebuilt: Twilio then matches any message from us to that number
        )
        for m in messages
    ]


def _sent_messages(session, messages: Sequence[Message]) -> list[SentMessage]:
    """What an adapter needs to ask for a status: our id, the provider's id, the address."""
    contacts = _contacts(session, messages)
    return [SentMessage(str(m.id), m.provider_id, _address(m, contacts)) for m in messages if m.provider_id]


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


def _default_adapters(settings: Settings) -> Callable[[str], Channel]:
    return lambda kind: open_channel(settings, kind)


class _Adapters:
    """One adapter per channel for the whole run, made on first need, closed at the end."""

    def __init__(self, adapter_for: Callable[[str], Channel], report: ReconcileReport) -> None:
        self._adapter_for = adapter_for
        self._report = report
        self._made: dict[str, Channel | None] = {}

    def get(self, channel: str) -> Channel | None:
        if channel not in self._made:
            try:
                self._made[channel] = self._adapter_for(channel)
            except (ChannelError, TypeError, ValueError) as exc:
                self._report.note(channel, f"adapter unavailable: {exc}")
                self._made[channel] = None
        return self._made[channel]

    def close(self) -> None:
        for adapter in self._made.values():
            if adapter is not None:
                adapter.close()


def reconcile(
    engine: Engine,
    settings: Settings,
    *,
    older_than: timedelta = timedelta(hours=2),
    flag_after: timedelta = timedelta(hours=24),
    ask_for: timedelta = timedelta(days=7),
    channels: Sequence[str] = TRACKED_CHANNELS,
    adapter_for: Callable[[str], Channel] | None = None,
    now: datetime | None = None,
) -> ReconcileReport:
    """Settle what can be settled, flag the rest (see the module docstring). Providers are asked
    about messages open for between ``older_than`` and ``ask_for``: past that a message has been
    asked about every run for days and is flagged; asking again would only grow the hourly work
    with the backlog."""
    now = now or datetime.now(UTC)
    report = ReconcileReport()
    adapters = _Adapters(adapter_for or _default_adapters(settings), report)
    with session_scope(engine) as session:
        report.replayed = tracking.replay(session).moved
    try:
        last_id = 0
        while True:
            with session_scope(engine) as session:
                chunk = find_stuck(
                    session,
                    now - older_than,
                    channels,
                    after_id=last_id,
                    limit=CHUNK,
                    not_before=now - ask_for,
                )
                if not chunk:
                    break
                last_id = chunk[-1].id
                report.stuck += len(chunk)
                in_doubt = _by_channel(m for m in chunk if m.status == MessageStatus.UNKNOWN)
                silent = _by_channel(m for m in chunk if m.status == MessageStatus.SENT)
                queries = {ch: _queries(session, msgs) for ch, msgs in in_doubt.items()}
                # the provider lists by send time: from the earliest hand-off among them, with slack
                sent_after = {
                    ch: min(as_utc(m.claimed_at or m.updated_at or m.created_at) for m in msgs)
                    - timedelta(hours=1)
                    for ch, msgs in in_doubt.items()
                }
                asks = {ch: _sent_messages(session, msgs) for ch, msgs in silent.items()}
                for ch, msgs in silent.items():
                    if len(asks[ch]) < len(msgs):
                        report.note(ch, "sent messages without a provider id cannot be asked about")
            for channel, channel_queries in queries.items():
                _look_up(engine, adapters, channel, channel_queries, sent_after[channel], report, now)
            for channel, sent in asks.items():
                _fetch_status(engine, adapters, channel, sent, report)
    finally:
        adapters.close()
    with session_scope(engine) as session:
        report.flagged = _flag(session, now - flag_after, channels, now)
        report.past_asking = _count_open_before(session, now - ask_for, channels)
        report.unmatched_events = len(tracking.unmatched_events(session, since=now - timedelta(days=1)))
    log.info("reconcile", extra={k: v for k, v in asdict(report).items() if k != "not_looked_up"})
    return report


def _by_channel(messages: Iterable[Message]) -> dict[str, list[Message]]:
    grouped: dict[str, list[Message]] = {}
    for message in messages:
        grouped.setdefault(message.channel, []).append(message)
    return grouped


def _look_up(engine, adapters: _Adapters, channel, queries, sent_after, report: ReconcileReport, now) -> None:
    """Unknown messages: did the provider get them? Found ones move to ``sent``."""
    adapter = adapters.get(channel)
    if adapter is None or not queries:
        return
    if not adapter.supports(Capability.RECONCILE):
        report.note(channel, f"{type(adapter).__name__} offers no reconcile()")
        return
    try:
        found = adapter.reconcile(queries, sent_after)
    except ChannelError as exc:  # one failed look-up must not stop the others
        report.note(channel, f"look-up failed: {exc}")
        return
    report.looked_up += len(queries)
    report.not_found += sum(1 for q in queries if found.get(q.message_id) is None)
    events = _found_events(channel, adapter.provider, found, now)
    with session_scope(engine) as session:
        report.moved += tracking.ingest(session, events).moved


def _fetch_status(
    engine, adapters: _Adapters, channel, sent: list[SentMessage], report: ReconcileReport
) -> None:
    """Sent messages with no final status: what does the provider say now?"""
    if not sent:
        return
    adapter = adapters.get(channel)
    if adapter is None:
        return
    if not adapter.supports(Capability.STATUS_LOOKUP):
        report.note(channel, f"{type(adapter).__name__} offers no fetch_status()")
        return
    try:
        outcome: StatusOutcome = adapter.fetch_status(sent)
    except ChannelError as exc:
        report.status_failed += len(sent)
        report.note(channel, f"status fetch failed: {exc}")
        return
    report.status_asked += len(sent)
    report.status_fetched += len(outcome.events)
    report.status_missing += len(outcome.not_found)
    report.status_failed += len(outcome.errors)
    if outcome.errors:
        first = next(iter(outcome.errors.values()))
        report.note(channel, f"status fetch failed for some messages: {first}")
    if outcome.events:
        with session_scope(engine) as session:
            report.finalised += tracking.ingest(session, outcome.events.values()).moved


def _count_open_before(session, before: datetime, channels: Sequence[str]) -> int:
    return session.scalar(select(func.count()).select_from(Message).where(*_open_before(before, channels)))


def _flag(session, older_than: datetime, channels: Sequence[str], now: datetime) -> int:
    """Mark messages still open: the status stays (nothing is assumed), the reason says why."""
    flagged, last_id = 0, 0
    while True:
        rows = session.execute(
            select(Message.id, Message.last_error_code, Message.last_error)
            .where(*_open_before(older_than, channels), Message.id > last_id)
            .order_by(Message.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return flagged
        last_id = rows[-1].id
        for mid, code, error in rows:
            if code == FLAG_CODE:
                continue
            before = f" (before: {code}: {error})" if code else ""
            session.execute(
                update(Message)
                .where(Message.id == mid)
                .values(
                    last_error_code=FLAG_CODE,
                    last_error=f"no final provider status by {now:%Y-%m-%d %H:%M} UTC{before}"[:2000],
                )
            )
            flagged += 1
