"""Dispatch: claim ledger rows, check consent again, render, hand to the channel, record outcomes.

Marketing prefers a missed message to a duplicate: a message whose outcome is unknown (the request
may have left) is marked ``unknown`` and reconciled, never resent blindly.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Protocol

from sqlalchemy import Engine, select

from channels.base import Address, BatchOutcome, Channel, OutboundMessage
from channels.errors import (
    ConfigurationError,
    OutcomeUnknown,
    PermanentError,
    RecipientRejected,
    TransientError,
)
from outreach import consent, contents, ledger, tracking
from outreach.campaigns import gate as campaign_gate
from outreach.config import CHANNEL_SCOPE, ConfigError, OffersFile, Settings
from outreach.db import session_scope
from outreach.models import Candidate, Customer, Decision, Message
from outreach.pii import scrub
from outreach.policy.windows import release_time
from outreach.rendering import Renderer, TemplateError, message_context
from outreach.statuses import MessageStatus
from outreach.suppression_check import active_suppressions

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    requeued: int = 0
    cancelled: int = 0
    held_paused: int = 0  # left planned: their campaign is paused (sent after resume)
    deferred: int = 0  # the sending window closed after planning: planned again for its opening
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, other: DispatchReport) -> DispatchReport:
        for name in (
            "claimed",
            "sent",
            "failed",
            "unknown",
            "requeued",
            "cancelled",
            "held_paused",
            "deferred",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, count in other.errors.items():
            self.errors[code] = self.errors.get(code, 0) + count
        return self


# which DispatchReport count a message's status after a failed hand-off adds to
REPORT_COUNTER = {
    MessageStatus.PLANNED: "requeued",
    MessageStatus.FAILED: "failed",
    MessageStatus.UNKNOWN: "unknown",
}
SCOPE_CHANNEL = {scope: channel for channel, scope in CHANNEL_SCOPE.items()}


def _load_layout() -> tuple[list, list[tuple[int, list[str]]]]:
    """What Dispatcher._load selects (every column of message, customer and candidate) and, per
    class, where its columns start in a row and the attribute name of each."""
    columns, slices = [], []
    for cls in (Message, Customer, Candidate):
        mapper = cls.__mapper__
        table_columns = list(cls.__table__.columns)
        slices.append((len(columns), [mapper.get_property_by_column(c).key for c in table_columns]))
        columns.extend(table_columns)
    return columns, slices


_LOAD_COLUMNS, _LOAD_SLICES = _load_layout()


class RateLimiter(Protocol):
    """A per-channel rate limit shared by every process that sends (flows/limits.py backs it with
    Prefect global concurrency limits); the core only asks for slots before it claims."""

    def slice_size(self, channel: str) -> int | None:
        """The most messages one acquisition may cover (the limit's burst), or None: no limit."""

    def acquire(self, channel: str, count: int) -> None:
        """Block until ``count`` messages of ``channel`` may go out (raises if the limit is missing)."""


def unsubscribe_link(settings: Settings, customer_id: str, scope: str) -> str | None:
    try:
        from outreach.unsubscribe import unsubscribe_url
    except ImportError:
        # without signed links, the general opt-out page: an email template refuses to render
        # without a link (strict), so returning None here would fail every email
        return f"{settings.public_url.rstrip('/')}/unsubscribe"
    try:
        return unsubscribe_url(settings, customer_id, scope)
    except ConfigError:
        # no OUTREACH_UNSUBSCRIBE_SECRET: dev runs into the outbox get the general opt-out page;
        # a real provider must not send without a personal one-click link, so the error stands
        if settings.backend_for(SCOPE_CHANNEL.get(scope, scope)) == "outbox":
            return f"{settings.public_url.rstrip('/')}/unsubscribe"
        raise


def preference_links(settings: Settings, customer) -> dict[str, str]:
    """Link and letter code of the customer's preference centre; none without a secret."""
    from outreach import preferences

    try:
        return {
            "url": preferences.preference_url(settings, customer.customer_id),
            "page": f"{settings.public_url.rstrip('/')}/p",
            "code": preferences.letter_code(settings, customer.customer_id),
        }
    except ConfigError:
        return {}


class Dispatcher:
    """Sends one channel's claimed messages. Holds no per-call state: threads may share one when
    its channel is thread-safe (the Twilio and SendGrid adapters keep an SDK client per thread)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        offers: OffersFile,
        channel: Channel,
        worker: str,
        clock: Callable[[], datetime] | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.offers = offers.by_code()
        self.policy = offers.policy
        self.clock = clock or (lambda: datetime.now(UTC))
        self.channel = channel
        self.worker = worker
        self.limiter = limiter
        self.renderer = Renderer(settings.templates_dir)

    def send_ids(self, ids: Sequence[int]) -> DispatchReport:
        """Send what is still planned among ``ids``. Under a rate limit, in slices of at most the
        limit's burst, each taking its slots *before* it claims: the wait for slots holds no claim,
        so a worker that dies while waiting leaves nothing in doubt, and at most a slice per thread
        when it dies while sending."""
        size = self.limiter.slice_size(self.channel.kind) if self.limiter and ids else None
        if not size:
            return self._send(ids)
        report = DispatchReport()
        for start in range(0, len(ids), size):
            part = ids[start : start + size]
            self.limiter.acquire(self.channel.kind, len(part))
            report.add(self._send(part))
        return report

    def _send(self, ids: Sequence[int]) -> DispatchReport:
        report = DispatchReport()
        gate = campaign_gate.check(self.engine, ids, self.worker)  # paused campaigns wait; variant templates
        report.held_paused = len(gate.held)
        won = ledger.claim(self.engine, gate.sendable(ids), self.worker)
        report.claimed = len(won)
        if not won:
            return report
        rows = self._load(won)
        rows, report.deferred = self._defer_quiet_hours(rows)
        blocked = self._withdrawn(rows)  # message id -> (code, why)
        outbound: list[OutboundMessage] = []
        failed_render: dict[int, str] = {}
        for message, customer, candidate in rows:
            if message.id in blocked:
                continue
            try:
                outbound.append(self._build(message, customer, candidate, gate.templates.get(message.id)))
            except TemplateError as exc:
                failed_render[message.id] = str(exc)
        with session_scope(self.engine) as session:
            by_reason: dict[tuple[str, str], list[int]] = defaultdict(list)
            for mid, reason in blocked.items():
                by_reason[reason].append(mid)
            for (code, why), mids in sorted(by_reason.items()):
                report.cancelled += ledger.transition(
                    session,
                    mids,
                    MessageStatus.CANCELLED,
                    expected=MessageStatus.SENDING,
                    detail=why,
                    last_error_code=code,
                )
            for mid, error in failed_render.items():
                report.failed += ledger.transition(
                    session,
                    [mid],
                    MessageStatus.FAILED,
                    expected=MessageStatus.SENDING,
                    last_error_code="template",
                    last_error=error,
                )
            contents.record(session, outbound, failed_render)  # on record before the hand-off
        if outbound:
            outcome = self.channel.send_batch(outbound)
            self._record(outcome, {int(m.message_id): m for m in outbound}, report)
        return report

    def _defer_quiet_hours(self, rows: list[tuple[Message, Customer, Candidate]]) -> tuple[list, int]:
        """A message whose window closed between planning and sending waits for the next opening:
        planned again with ``not_before``, never sent early or late in quiet hours."""
        window = self.policy.quiet_hours.get(self.channel.kind)
        if window is None or not self.settings.send_window_check:
            return rows, 0
        at = self.clock()
        keep, later = [], {}
        for row in rows:
            zone = row[1].timezone or self.policy.default_timezone
            release = release_time(at, window, zone, self.policy.holiday_country)
            if release is None:
                keep.append(row)
            else:
                later[row[0].id] = release
        with session_scope(self.engine) as session:
            for mid, release in later.items():
                ledger.transition(
                    session,
                    [mid],
                    MessageStatus.PLANNED,
                    expected=MessageStatus.SENDING,
                    not_before=release,
                    detail="sending window closed: waits for it to open",
                )
        return keep, len(later)

    def _load(self, ids: Sequence[int]) -> list[tuple[Message, Customer, Candidate]]:
        """The claimed messages with their customer and candidate, as read-only records with the
        mapped classes' attribute names. Plain rows, not ORM objects: nothing here changes through
        a session, and mapping three objects per message was a tenth of the whole send path."""
        stmt = (
            select(*_LOAD_COLUMNS)
            .join(Customer, Customer.customer_id == Message.customer_id)
            .join(Decision, Decision.id == Message.decision_id)
            .join(Candidate, Candidate.id == Decision.candidate_id)
            .where(Message.id.in_(list(ids)))
        )
        with self.engine.connect() as connection:
            rows = connection.execute(stmt).all()
        return [
            tuple(
                SimpleNamespace(**dict(zip(names, row[start : start + len(names)], strict=True)))
                for start, names in _LOAD_SLICES
            )
            for row in rows
        ]

    def _withdrawn(self, rows: list[tuple[Message, Customer, Candidate]]) -> dict[int, tuple[str, str]]:
        """Consent and suppression lists checked again right before sending: an opt-out or a list
        entry that arrived after the day was planned is honoured. Returns message id -> (code, why)."""
        by_topic: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for message, _customer, _candidate in rows:
            by_topic[self.offers[message.offer_code].topic].append((message.id, message.customer_id))
        blocked: dict[int, tuple[str, str]] = {}
        scope = CHANNEL_SCOPE[self.channel.kind]
        today = self.clock().date()
        with session_scope(self.engine) as session:
            for topic, pairs in by_topic.items():
                out = consent.latest_opted_out(
                    session, [c for _, c in pairs], {"all", scope, f"topic:{topic}"}
                )
                for mid, cid in pairs:
                    if cid in out:
                        blocked[mid] = ("opted_out_before_send", "consent withdrawn before send")
            listed = active_suppressions(
                session,
                {(cid, topic) for topic, pairs in by_topic.items() for _, cid in pairs},
                today,
                self.policy.suppression_scopes,
            )
            for topic, pairs in by_topic.items():
                for mid, cid in pairs:
                    if mid not in blocked and (cid, topic) in listed:
                        reason = listed[(cid, topic)]
                        blocked[mid] = (
                            f"suppressed_before_send_{reason}",
                            f"on the {reason} list before send",
                        )
        return blocked

    def _build(
        self, message: Message, customer: Customer, candidate: Candidate, template: str | None = None
    ) -> OutboundMessage:
        offer = self.offers[message.offer_code]
        scope = CHANNEL_SCOPE[message.channel]
        unsubscribe = unsubscribe_link(self.settings, customer.customer_id, scope)
        columns = {c.name: getattr(customer, c.name) for c in Customer.__table__.columns}
        trigger = {
            "trigger": candidate.trigger,
            "trigger_ref": candidate.trigger_ref,
            "score": candidate.score,
        }
        context = message_context(
            columns, offer, trigger, message.run_date, unsubscribe, preference_links(self.settings, customer)
        )
        template = template or offer.template_for(message.channel)
        rendered = self.renderer.render(message.channel, template, customer.language or "nl", context)
        to = {"sms": customer.mobile, "call": customer.mobile, "email": customer.email}.get(
            message.channel, customer.customer_id
        )
        address = None
        if message.channel == "letter":
            address = Address(
                name=f"{customer.first_name} {customer.last_name}",
                street=customer.street or "",
                house_number=customer.house_number or "",
                postal_code=customer.postal_code or "",
                city=customer.city or "",
                country=customer.country or "NL",
            )
        return OutboundMessage(
            message_id=str(message.id),
            channel=message.channel,
            customer_id=customer.customer_id,
            offer_code=message.offer_code,
            run_date=message.run_date,
            to=to or "",
            body=rendered.body,
            subject=rendered.subject,
            html=rendered.html,
            language=rendered.language,
            address=address,
            unsubscribe_url=unsubscribe,
            metadata={
                "postal_code": customer.postal_code or "",
                contents.NOTE_KEY: rendered.note or "",
                contents.TEMPLATE_KEY: template,
                contents.DIGEST_KEY: rendered.template_digest,
            },
        )

    def _record(
        self, outcome: BatchOutcome, sent: dict[int, OutboundMessage], report: DispatchReport
    ) -> None:
        with session_scope(self.engine) as session:
            results = {int(mid): r.provider_message_id for mid, r in outcome.results.items()}
            report.sent += ledger.record_sent(session, self.channel.provider, results)
            tracking.replay(session, list(results))  # callbacks that came before this bookkeeping
            for mid_text, error in outcome.errors.items():
                mid = int(mid_text)
                code = getattr(error, "code", None) or type(error).__name__
                report.errors[code] = report.errors.get(code, 0) + 1
                detail = scrub(str(error))[:2000]
                if isinstance(error, RecipientRejected) and error.opted_out:
                    # the provider says the recipient opted out (Twilio 21610): record it
                    consent.record(
                        session,
                        sent[mid].customer_id,
                        CHANNEL_SCOPE[self.channel.kind],
                        "opt_out",
                        f"provider:{self.channel.provider}",
                        actor=consent.Actor("provider", self.channel.provider, sent[mid].message_id),
                    )
                if isinstance(error, ConfigurationError):
                    status = (
                        MessageStatus.PLANNED
                    )  # the channel refused to send (bad credentials): nothing left
                elif isinstance(error, PermanentError):
                    status = MessageStatus.FAILED
                elif isinstance(error, OutcomeUnknown):
                    status = MessageStatus.UNKNOWN
                elif isinstance(error, TransientError | OSError):
                    status = (
                        MessageStatus.PLANNED
                        if self._attempts(session, mid) < MAX_ATTEMPTS
                        else MessageStatus.FAILED
                    )
                else:
                    status = (
                        MessageStatus.UNKNOWN
                    )  # an unexpected error after the hand-off: do not resend blindly
                moved = ledger.transition(
                    session,
                    [mid],
                    status,
                    expected=MessageStatus.SENDING,
                    last_error_code=str(code)[:40],
                    last_error=detail,
                )
                counter = REPORT_COUNTER[status]
                setattr(report, counter, getattr(report, counter) + moved)

    def _attempts(self, session, message_id: int) -> int:
        return session.scalar(select(Message.attempts).where(Message.id == message_id)) or 0


def release_stale_claims(engine: Engine, older_than: datetime) -> int:
    """Claims left in ``sending`` by a dead worker become ``unknown``: reconciled, never resent blindly."""
    with session_scope(engine) as session:
        ids = list(
            session.scalars(
                select(Message.id).where(
                    Message.status == MessageStatus.SENDING, Message.claimed_at < older_than
                )
            )
        )
        return ledger.transition(
            session, ids, MessageStatus.UNKNOWN, expected=MessageStatus.SENDING, detail="claim lease expired"
        )


def now() -> datetime:
    return datetime.now(UTC)


__all__ = ["Dispatcher", "DispatchReport", "RateLimiter", "release_stale_claims"]
