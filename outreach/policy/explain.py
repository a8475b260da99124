"""Why did (or didn't) this customer get an offer on this day? Every rule, in order, in plain words.

The recorded decision (table ``decisions``) is the authority for what happened. To show each rule's
verdict, the customer's candidates are evaluated again with the same engine, as of the moment the
decision was taken (consent events up to then, ledger history before that day). Day-level steps
that depend on other customers (capacity) are taken from the record. If the re-evaluation differs
from the record — data changed since, e.g. a suppression was back-dated — the explanation says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Engine, select

from outreach import contents
from outreach.config import OffersFile
from outreach.db import as_utc, session_scope
from outreach.models import (
    Candidate,
    ConsentEvent,
    Customer,
    Decision,
    DeliveryEventRecord,
    Holding,
    Message,
    MessageContent,
    MessageTransition,
    Suppression,
)
from outreach.policy.engine import MAX_CHANNELS, REASONS, RULES, STATUS_NAMES, evaluate
from outreach.policy.inputs import NOT_CONTACTS, NOT_INTERESTED, load_inputs
from outreach.statuses import LIVE_OUTCOMES, Outcome

BASIS_TEXT = {
    "legitimate_interest": "legitimate interest (GDPR art. 6(1)(f)): direct marketing to an existing "
    "customer who has not objected",
    "consent": "consent (GDPR art. 6(1)(a)): the customer's explicit opt-in is on record",
}


@dataclass
class RuleLine:
    code: str
    question: str
    verdict: str  # passed | failed | held | not reached
    facts: str


@dataclass
class CandidateExplanation:
    candidate_id: int
    offer_code: str
    trigger: str
    trigger_ref: str
    score: float
    outcome: str
    reason: str
    reason_text: str
    channel: str | None
    legal_basis: str | None
    legal_basis_text: str | None
    detail: str | None
    release_at: str | None  # held: when its sending window opens
    decided_at: str | None  # None: not decided yet (the outcome shown is what the engine would do)
    rules: list[RuleLine] = field(default_factory=list)
    note: str | None = None
    event: str | None = None  # live lane: the payment event that triggered it, and when


@dataclass
class MessageLine:
    message_id: int
    offer_code: str
    channel: str
    status: str
    not_before: str | None
    sent_at: str | None
    transitions: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    content: ContentView | None = None  # what was handed to the channel; None: not rendered or purged


@dataclass
class ContentView:
    """The stored content of a message, for the operator (personal data: never logged)."""

    channel: str
    language: str
    language_note: str | None
    template: str
    template_digest: str
    subject: str | None
    body: str
    html_bytes: int | None
    html_sha256: str | None
    content_sha256: str
    rendered_at: str

    @classmethod
    def of(cls, row: MessageContent) -> ContentView:
        html = row.html.encode("utf-8") if row.html is not None else None
        return cls(
            channel=row.channel,
            language=row.language,
            language_note=row.language_note,
            template=row.template,
            template_digest=row.template_digest,
            subject=row.subject,
            body=row.body,
            html_bytes=len(html) if html is not None else None,
            html_sha256=hashlib.sha256(html).hexdigest() if html is not None else None,
            content_sha256=row.content_sha256,
            rendered_at=_when(row.rendered_at),
        )


@dataclass
class Explanation:
    customer_id: str
    run_date: date
    customer_known: bool
    as_of: datetime
    candidates: list[CandidateExplanation] = field(default_factory=list)
    messages: list[MessageLine] = field(default_factory=list)

    def to_json(self) -> dict:
        data = asdict(self)
        data["run_date"] = self.run_date.isoformat()
        data["as_of"] = self.as_of.isoformat()
        return data


def _release_text(value: str | datetime | None) -> str | None:
    """A release time as the engine gives it (ISO text) or as stored (datetime), shown like _when."""
    if value is None:
        return None
    return _when(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _when(value: datetime | None) -> str:
    value = as_utc(value)
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


class _Facts:
    """The customer's raw records, for the sentences."""

    def __init__(self, engine: Engine, customer_id: str, day: date, as_of: datetime) -> None:
        with session_scope(engine) as s:
            self.consent = [
                e
                for e in s.scalars(
                    select(ConsentEvent)
                    .where(ConsentEvent.customer_id == customer_id)
                    .order_by(ConsentEvent.recorded_at, ConsentEvent.id)
                )
                if as_utc(e.recorded_at) <= as_of
            ]
            self.suppressions = list(
                s.scalars(select(Suppression).where(Suppression.customer_id == customer_id))
            )
            self.holdings = {
                h.product: h for h in s.scalars(select(Holding).where(Holding.customer_id == customer_id))
            }
            self.contacts = list(
                s.scalars(
                    select(Message).where(
                        Message.customer_id == customer_id,
                        Message.run_date < day,
                        Message.status.not_in(NOT_CONTACTS),
                    )
                )
            )
            self.answers = list(
                s.execute(
                    select(DeliveryEventRecord.occurred_at, Message.offer_code)
                    .join(Message, Message.id == DeliveryEventRecord.message_id)
                    .where(
                        Message.customer_id == customer_id,
                        DeliveryEventRecord.event_type == NOT_INTERESTED[0],
                        DeliveryEventRecord.description == NOT_INTERESTED[1],
                    )
                    .order_by(DeliveryEventRecord.occurred_at)
                ).all()
            )

    def latest(self, scope: str) -> ConsentEvent | None:
        events = [e for e in self.consent if e.scope == scope]
        return events[-1] if events else None


def _consent_sentence(event: ConsentEvent | None, what: str) -> str:
    if event is None:
        return f"no consent event for {what}: in by default (opt-out model)"
    verb = "opted out of" if event.choice == "opt_out" else "opted in to"
    return f"latest event for {what}: {verb} it on {_when(event.recorded_at)} (source: {event.source})"


def _facts_for(rule_code: str, row: dict, offers: OffersFile, facts: _Facts, day: date) -> str:
    policy = offers.policy
    offer = offers.by_code().get(row["offer_code"])
    if rule_code == "unknown_customer":
        return "the customer is in the customer table" if row["customer_known"] else "no such customer"
    if offer is None:
        return f"offer {row['offer_code']} is not defined in offers.yaml"
    if rule_code == "unknown_offer":
        return (
            f"offer {offer.code}: product {offer.product}, topic {offer.topic}, priority {offer.priority}, "
            f"channels {' > '.join(offer.channels)}"
        )
    if rule_code == "offer_not_valid":
        span = f"valid from {offer.valid_from or 'always'} until {offer.valid_until or 'further notice'}"
        return f"{span}; the day is {day}"
    if rule_code == "opted_out_global":
        return _consent_sentence(facts.latest("all"), "all personalised offers (scope 'all')")
    if rule_code == "suppressed_*":
        active = [
            s
            for s in facts.suppressions
            if s.valid_from <= day and (s.valid_until is None or s.valid_until >= day)
        ]
        if not active:
            return "on no suppression list on this day"
        parts = []
        for s in active:
            scope = policy.suppression_scopes.get(s.reason, "all")
            covers = "covers every offer" if scope == "all" else f"covers topics {', '.join(scope)}"
            until = s.valid_until or "open-ended"
            parts.append(f"list '{s.reason}' from {s.valid_from} until {until} ({covers})")
        return "; ".join(parts)
    if rule_code == "opted_out_topic":
        return _consent_sentence(facts.latest(f"topic:{offer.topic}"), f"topic '{offer.topic}'")
    if rule_code == "no_consent":
        if offer.legal_basis != "consent":
            return "the offer rests on legitimate interest: no opt-in needed"
        return "the offer needs consent; " + _consent_sentence(
            facts.latest(f"topic:{offer.topic}"), offer.topic
        )
    if rule_code == "holds_product":
        held = facts.holdings.get(offer.product)
        return (
            f"holds {offer.product} (opened {held.opened_at or 'date unknown'})"
            if held
            else (f"does not hold {offer.product}")
        )
    if rule_code == "not_interested_topic":
        mine = [
            _when(at)
            for at, code in facts.answers
            if code in offers.by_code() and offers.by_code()[code].topic == offer.topic
        ]
        rule = (
            f"rule: {policy.not_interested_limit} answers within {policy.not_interested_window_days} days "
            f"suppress the topic for {policy.not_interested_suppress_days} days"
        )
        if not mine:
            return f"no 'not interested' answers on topic '{offer.topic}' ({rule})"
        return f"'not interested' on topic '{offer.topic}' at {', '.join(mine)} ({rule})"
    ages = [((day - m.run_date).days, m) for m in facts.contacts]
    if rule_code == "contacted_today":
        return (
            "no other offer planned or sent today"
            if not row["f_today"]
            else "another offer is already planned today"
        )
    if rule_code in ("cap_7d", "cap_30d"):
        days = 7 if rule_code == "cap_7d" else 30
        cap = policy.caps.per_7_days if days == 7 else policy.caps.per_30_days
        n = sum(1 for age, _ in ages if 0 < age < days)
        return f"{n} contact(s) in the {days} days up to this day; the cap is {cap}"
    if rule_code == "cooldown_offer":
        cooldown = offer.cooldown_days if offer.cooldown_days is not None else policy.cooldown_days
        same = sorted(age for age, m in ages if m.offer_code == offer.code)
        if not same:
            return f"offer not sent before within the history kept (cooldown {cooldown} days)"
        return f"offer last sent {same[0]} day(s) before; the cooldown is {cooldown} days"
    if rule_code.startswith("opted_out_channel"):
        parts = []
        for k in range(MAX_CHANNELS):
            channel = row.get(f"ch_{k}")
            if channel:
                parts.append(f"{channel}: {STATUS_NAMES[row[f'stat_{k}']]}")
        return "; ".join(parts)
    return ""


def _day_facts(rule_code: str, row: dict, offers: OffersFile, ranking: list[dict]) -> str:
    policy = offers.policy
    if rule_code == "lost_arbitration":
        if not ranking:
            return "not eligible, so not ranked"
        order = ", ".join(f"{r['offer_code']} ({r['rank_value']:.3g})" for r in ranking)
        return f"priority × score of the customer's eligible offers today: {order}"
    if rule_code == "over_capacity":
        detail = row.get("detail") or ""
        full = next((p.removeprefix("full=") for p in detail.split(";") if p.startswith("full=")), "")
        caps = ", ".join(f"{c} {n}/day" for c, n in policy.capacity.items())
        if row["reason"] == "over_capacity":
            return f"every allowed channel was full ({full or 'all'}); daily capacities: {caps}"
        if full:
            return (
                f"{full.replace(',', ', ')} full with better-ranked candidates; fell back to {row['channel']}"
            )
        if row["channel"] not in policy.capacity:
            return f"{row['channel']} has no daily capacity limit"
        return f"{row['channel']} had room (daily capacities: {caps})"
    if rule_code.startswith("invalid_timezone"):
        channel = row.get("channel")
        window = policy.quiet_hours.get(channel) if channel else None
        zone = row.get("timezone") or policy.default_timezone
        if window is None:
            return f"{channel or 'no channel'}: no quiet hours"
        hours = f"{channel} may be sent {window.start:%H:%M}–{window.end:%H:%M} in {zone}"
        if window.working_days_only:
            hours += f" on working days, not on {policy.holiday_country} public holidays"
        release = row.get("release_at")
        if release:
            at = release if isinstance(release, datetime) else datetime.fromisoformat(release)
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            try:
                local = at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")
            except Exception:  # an unknown zone is reported by the rule itself
                local = "?"
            return f"{hours}; held until {local} ({at:%Y-%m-%d %H:%M} UTC)"
        return hours
    return ""


def explain_customer(
    engine: Engine, customer_id: str, run_date: date, offers: OffersFile, at: datetime | None = None
) -> Explanation:
    with session_scope(engine) as s:
        known = s.get(Customer, customer_id) is not None
        cands = {
            c.id: c
            for c in s.scalars(
                select(Candidate).where(
                    Candidate.customer_id == customer_id, Candidate.candidate_date == run_date
                )
            )
        }
        recorded = {
            d.candidate_id: d
            for d in s.scalars(select(Decision).where(Decision.candidate_id.in_(list(cands))))
        }
    stamps = [as_utc(d.decided_at) for d in recorded.values()]
    as_of = at or (min(stamps) if stamps else datetime.now(UTC))
    explanation = Explanation(customer_id, run_date, known, as_of)
    if cands:
        inputs = load_inputs(
            engine, run_date, offers, as_of, include_same_day=False, customer_ids=[customer_id]
        )
        frame = evaluate(inputs, full=True)
        facts = _Facts(engine, customer_id, run_date, as_of)
        eligible = frame.filter(~pl.any_horizontal([pl.col(r.fails) for r in RULES[:14]]))
        ranking = eligible.sort(
            ["rank_value", "offer_code", "candidate_id"], descending=[True, False, False]
        ).to_dicts()
        for row in frame.to_dicts():
            explanation.candidates.append(
                _candidate(
                    row, cands[row["candidate_id"]], recorded.get(row["candidate_id"]), offers, facts, ranking
                )
            )
    _live_events(engine, explanation.candidates, {i: c.source for i, c in cands.items()})
    explanation.messages = _messages(engine, customer_id, run_date)
    return explanation


def _live_events(engine: Engine, candidates: list[CandidateExplanation], sources: dict[int, str]) -> None:
    """For candidates of the live lane: which payment event triggered them, when it happened and
    when the lane acted on it (the ``live_events`` table of outreach/live/tables.py)."""
    live = [c for c in candidates if sources.get(c.candidate_id) == "live"]
    if not live:
        return
    table = Candidate.metadata.tables["live_events"]
    with engine.connect() as conn:
        found = {
            r.event_id: r
            for r in conn.execute(
                select(table.c.event_id, table.c.occurred_at, table.c.received_at).where(
                    table.c.event_id.in_([c.trigger_ref for c in live])
                )
            )
        }
    for c in live:
        row = found.get(c.trigger_ref)
        if row is not None:
            lag = (as_utc(row.received_at) - as_utc(row.occurred_at)).total_seconds()
            c.event = (
                f"live: payment event {row.event_id} at {_when(row.occurred_at)}, "
                f"acted on {_when(row.received_at)} ({lag:.1f} s later)"
            )


def _rule_index(reason: str) -> int:
    for i, rule in enumerate(RULES):
        codes = rule.code.split("|")
        if reason in codes or (rule.code == "suppressed_*" and reason.startswith("suppressed_")):
            return i
    return len(RULES)  # planned: every rule passed


def _candidate(
    row: dict,
    cand: Candidate,
    record: Decision | None,
    offers: OffersFile,
    facts: _Facts,
    ranking: list[dict],
) -> CandidateExplanation:
    computed = (row["outcome"], row["reason"], row["channel"])
    if record is not None:
        row = {**row, "outcome": record.outcome, "reason": record.reason, "channel": record.channel}
        row.update(detail=record.detail, release_at=record.release_at, legal_basis=record.legal_basis)
    deciding = _rule_index(row["reason"])
    lines = []
    for i, rule in enumerate(RULES):
        if i < deciding:
            verdict = "passed"
        elif i == deciding:
            verdict = "held" if row["reason"] == "quiet_hours_held" else "failed"
        else:
            verdict = "not reached"
        text = _facts_for(rule.code, row, offers, facts, cand.candidate_date) if i < 14 else ""
        if i >= 14:
            text = _day_facts(rule.code, row, offers, ranking) if verdict != "not reached" else ""
        lines.append(RuleLine(rule.code.replace("_*", "_<list>"), rule.question, verdict, text))
    note = None
    if record is not None and computed != (record.outcome, record.reason, record.channel):
        day_level = {"over_capacity", "lost_arbitration"} & {record.reason, computed[1]}
        note = (
            "evaluated again now, this candidate would be "
            f"{computed[0]} ({computed[1]}{', ' + computed[2] if computed[2] else ''}); "
            + (
                "capacity depends on the whole day's candidates, so the record stands"
                if day_level
                else "the customer's data changed after the decision; the recorded decision stands"
            )
        )
    basis = row.get("legal_basis")
    return CandidateExplanation(
        candidate_id=row["candidate_id"],
        offer_code=row["offer_code"],
        trigger=cand.trigger,
        trigger_ref=cand.trigger_ref,
        score=cand.score,
        outcome=row["outcome"],
        reason=row["reason"],
        reason_text=REASONS.get(row["reason"], row["reason"]),
        channel=row["channel"],
        legal_basis=basis if row["outcome"] in LIVE_OUTCOMES else None,
        legal_basis_text=BASIS_TEXT.get(basis) if row["outcome"] in LIVE_OUTCOMES else None,
        detail=row.get("detail"),
        release_at=_release_text(row.get("release_at")) if row["outcome"] == Outcome.HELD else None,
        decided_at=_when(record.decided_at) if record else None,
        rules=lines,
        note=note,
    )


def _messages(engine: Engine, customer_id: str, run_date: date) -> list[MessageLine]:
    with session_scope(engine) as s:
        messages = list(
            s.scalars(
                select(Message)
                .where(Message.customer_id == customer_id, Message.run_date == run_date)
                .order_by(Message.id)
            )
        )
        ids = [m.id for m in messages]
        transitions = list(
            s.scalars(
                select(MessageTransition)
                .where(MessageTransition.message_id.in_(ids))
                .order_by(MessageTransition.at, MessageTransition.id)
            )
        )
        events = list(
            s.scalars(
                select(DeliveryEventRecord)
                .where(DeliveryEventRecord.message_id.in_(ids))
                .order_by(DeliveryEventRecord.occurred_at)
            )
        )
        stored = contents.load(s, ids)
    lines = []
    for m in messages:
        line = MessageLine(
            m.id,
            m.offer_code,
            m.channel,
            m.status,
            _when(m.not_before) if m.not_before else None,
            _when(m.sent_at) if m.sent_at else None,
        )
        line.transitions = [
            f"{_when(t.at)}: {t.from_status or 'new'} → {t.to_status}"
            + (f" ({t.detail})" if t.detail else "")
            for t in transitions
            if t.message_id == m.id
        ]
        line.events = [
            f"{_when(e.occurred_at)}: {e.event_type}" + (f" ({e.description})" if e.description else "")
            for e in events
            if e.message_id == m.id
        ]
        if m.id in stored:
            line.content = ContentView.of(stored[m.id])
        lines.append(line)
    return lines
