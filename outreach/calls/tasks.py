"""The day's call tasks: creation from the ledger, atomic claims, outcomes and expiry.

A ``call`` message in the ledger is "sent" when its task exists; from there the task's life is

    open ──claim──► claimed ──outcome──► done
      ▲                │  └─ no answer, tries and hours left ─► open (next_attempt_at later today)
      │                └─ customer opted out meanwhile ─► cancelled
      └── calling window over ─► expired

and each outcome is also a delivery event on the message, moving it forward (answered → delivered,
no answer in the end → undelivered, wrong number → bounced), so funnels and contact caps count a
call like any other contact. Not-interested answers are delivery events whose ``raw["outcome"]``
is ``not_interested`` (and ``call_tasks.outcome`` says the same); their event_type/description are
the policy's ``NOT_INTERESTED`` pair ("replied", "not_interested"), which the outcome rule reads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from outreach import audit, consent, ledger
from outreach.calls.hours import DEFAULT_WINDOW, next_window, zone
from outreach.calls.models import Agent, CallAttempt, CallLead, CallTask, Team
from outreach.calls.script import describe_trigger
from outreach.calls.settings import CallSettings, get_call_settings
from outreach.config import OffersFile, get_settings, load_offers
from outreach.db import as_utc, session_scope
from outreach.errors import InputError
from outreach.models import Candidate, Customer, Decision, DeliveryEventRecord, Message, OfferRecord
from outreach.policy.inputs import NOT_INTERESTED

PROVIDER = "callcentre"
OUTCOMES = ("interested", "not_interested", "no_answer", "wrong_number", "do_not_contact")
OPT_OUT_SCOPES = ("phone", "all")  # "do not call me again" vs "no marketing at all"


class CallError(InputError):
    """A call-centre action that cannot be done, with a message an agent can read."""


@dataclass(frozen=True, slots=True)
class Created:
    """What became of the day's call messages: a task each, or closed with one of these reasons."""

    tasks: int
    over_capacity: int
    no_team: int
    no_phone: int


@dataclass(frozen=True, slots=True)
class OutcomeResult:
    task_status: str
    message_status: str | None
    retry_at: datetime | None = None
    lead_id: int | None = None


def _now(at: datetime | None) -> datetime:
    return (at or datetime.now(UTC)).astimezone(UTC)


def _event(
    session: Session,
    message: Message,
    event_id: str,
    event_type: str,
    description: str,
    at: datetime,
    *,
    reason: str | None = None,
    raw: dict | None = None,
) -> None:
    session.add(
        DeliveryEventRecord(
            message_id=message.id,
            channel="call",
            provider=PROVIDER,
            provider_event_id=event_id,
            provider_message_id=message.provider_id,
            event_type=event_type,
            reason=reason,
            description=description,
            occurred_at=at,
            received_at=at,
            raw=raw,
        )
    )


def _close_message(
    session: Session,
    message: Message,
    status: str,
    event_type: str,
    description: str,
    event_id: str,
    at: datetime,
    *,
    reason: str | None = None,
    error_code: str | None = None,
    raw: dict | None = None,
) -> None:
    """Record the event and move the message forward (a no-op when it is already further on)."""
    _event(session, message, event_id, event_type, description, at, reason=reason, raw=raw)
    values = {"last_error_code": error_code, "last_error": description} if error_code else {}
    ledger.transition(session, [message.id], status, detail=f"call: {description}", **values)


# --------------------------------------------------------------------------- creation


def _offer_facts(session: Session, offers: OffersFile) -> dict[str, tuple[int, str]]:
    """Priority and topic per offer code: offers.yaml first, the stored snapshot for older codes."""
    known = {
        code: (priority, topic)
        for code, priority, topic in session.execute(
            select(OfferRecord.code, OfferRecord.priority, OfferRecord.topic)
        )
    }
    known.update({offer.code: (offer.priority, offer.topic) for offer in offers.offers})
    return known


def create_tasks(
    engine: Engine,
    run_date: date,
    *,
    offers: OffersFile | None = None,
    settings: CallSettings | None = None,
) -> int:
    """Create the call tasks for the day's ``call`` messages in status ``sent``; returns how many.

    Idempotent: messages that have a task already are left alone. See ``create_tasks_report``.
    """
    return create_tasks_report(engine, run_date, offers=offers, settings=settings).tasks


def create_tasks_report(
    engine: Engine,
    run_date: date,
    *,
    offers: OffersFile | None = None,
    settings: CallSettings | None = None,
) -> Created:
    """Create the call tasks for the day's ``call`` messages in status ``sent``; idempotent.

    Messages are taken best first (offer priority, then candidate score, then ledger id), each
    given to a team for the customer's language (a team without a language takes any) with room
    left that calling day. A message that finds no room, no team or no valid phone number is
    closed as failed with that reason, so nothing is silently dropped.
    """
    offers = offers or load_offers(get_settings().offers_file)
    settings = settings or get_call_settings()
    rules = offers.policy.quiet_hours.get("call", DEFAULT_WINDOW)
    stamp = _now(None)
    created = over = no_team = no_phone = 0
    with session_scope(engine) as session:
        facts = _offer_facts(session, offers)
        priority = {code: p for code, (p, _) in facts.items()}
        rows = session.execute(
            select(Message, Customer, Candidate)
            .outerjoin(Customer, Customer.customer_id == Message.customer_id)
            .outerjoin(Decision, Decision.id == Message.decision_id)
            .outerjoin(Candidate, Candidate.id == Decision.candidate_id)
            .outerjoin(CallTask, CallTask.message_id == Message.id)
            .where(
                Message.run_date == run_date,
                Message.channel == "call",
                Message.status == "sent",
                CallTask.id.is_(None),
            )
        ).all()
        rows.sort(
            key=lambda r: (
                -priority.get(r.Message.offer_code, 0),
                -(r.Candidate.score if r.Candidate else 0),
                r.Message.id,
            )
        )
        teams = list(session.scalars(select(Team).order_by(Team.name)))
        used: Counter[tuple[int, date]] = Counter(
            {
                (team_id, day): n
                for team_id, day, n in session.execute(
                    select(CallTask.team_id, CallTask.call_date, func.count())
                    .where(CallTask.call_date >= run_date)
                    .group_by(CallTask.team_id, CallTask.call_date)
                )
            }
        )
        for row in rows:
            message, customer, candidate = row.Message, row.Customer, row.Candidate
            event_id = f"task-create-{message.id}"
            if customer is None or not customer.mobile or not customer.mobile_valid:
                no_phone += 1
                _close_message(
                    session,
                    message,
                    "failed",
                    "failed",
                    "no valid phone number",
                    event_id,
                    stamp,
                    reason="invalid",
                    error_code="no_valid_phone",
                )
                continue
            start_of_day = datetime.combine(run_date, time(0), tzinfo=zone(customer.timezone))
            not_before = max(start_of_day, as_utc(message.not_before) if message.not_before else start_of_day)
            window = next_window(not_before, customer.timezone, rules, settings.holiday_country)
            team = _pick_team(teams, customer.language, used, window.day)
            if team is None:
                no_team += 1
                _close_message(
                    session,
                    message,
                    "failed",
                    "failed",
                    f"no call-centre team for language {customer.language}",
                    event_id,
                    stamp,
                    reason="other",
                    error_code="no_team",
                )
                continue
            if team.calls_per_day - used[(team.id, window.day)] <= 0:
                over += 1
                _close_message(
                    session,
                    message,
                    "failed",
                    "failed",
                    f"call-centre capacity full on {window.day}",
                    event_id,
                    stamp,
                    reason="other",
                    error_code="over_capacity",
                )
                continue
            used[(team.id, window.day)] += 1
            session.add(
                CallTask(
                    message_id=message.id,
                    run_date=run_date,
                    call_date=window.day,
                    team_id=team.id,
                    customer_id=message.customer_id,
                    offer_code=message.offer_code,
                    topic=facts.get(message.offer_code, (0, None))[1],
                    priority=priority.get(message.offer_code, 0),
                    score=candidate.score if candidate else 0.0,
                    trigger=candidate.trigger if candidate else None,
                    trigger_text=describe_trigger(
                        session,
                        message.customer_id,
                        candidate.trigger if candidate else None,
                        candidate.trigger_ref if candidate else None,
                    )[:200],
                    status="open",
                    attempts=0,
                    next_attempt_at=max(window.start, not_before.astimezone(UTC)),
                    window_end=window.end,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
            created += 1
    return Created(created, over, no_team, no_phone)


def _pick_team(teams: list[Team], language: str, used: Counter, day: date) -> Team | None:
    """The customer's language team with most room left, else an any-language team; None if neither exists.

    A full team is returned when every candidate team is full (the caller records over capacity).
    """

    def room(team: Team) -> int:
        return team.calls_per_day - used[(team.id, day)]

    own = [t for t in teams if t.language == language]
    spare = [t for t in teams if t.language is None]
    for group in (own, spare):
        with_room = [t for t in group if room(t) > 0]
        if with_room:
            return max(with_room, key=room)  # the emptiest; ties keep name order
    return (own or spare or [None])[0]


# --------------------------------------------------------------------------- claiming


def _opted_out(session: Session, task: CallTask) -> bool:
    scopes = {"all", "phone"} | ({f"topic:{task.topic}"} if task.topic else set())
    return bool(consent.latest_opted_out(session, [task.customer_id], scopes))


def claim_next(engine: Engine, agent_id: int, *, now: datetime | None = None) -> int | None:
    """Give the agent the best open task of their team that may be called now; None if there is none.

    One UPDATE ... RETURNING takes the task; on PostgreSQL its candidate row is locked with
    FOR UPDATE SKIP LOCKED, so agents clicking at the same moment get different tasks instead of
    waiting on (or sharing) one. An agent with a call still in hand gets that one back.
    """
    at = _now(now)
    with session_scope(engine) as session:
        agent = session.get(Agent, agent_id)
        if agent is None or not agent.active:
            raise CallError("unknown or inactive agent")
        in_hand = session.scalar(
            select(CallTask.id).where(CallTask.claimed_by == agent_id, CallTask.status == "claimed")
        )
        if in_hand is not None:
            return in_hand
        queued = aliased(CallTask)
        while True:
            # "= (scalar subquery)" runs once (an InitPlan); with "IN (...)" PostgreSQL may re-run
            # a LIMIT 1 ... SKIP LOCKED subquery per outer row and take two tasks in one statement
            target = (
                select(queued.id)
                .where(
                    queued.team_id == agent.team_id,
                    queued.status == "open",
                    queued.next_attempt_at <= at,
                    queued.window_end > at,
                )
                .order_by(queued.priority.desc(), queued.score.desc(), queued.id)
                .limit(1)
                .correlate(None)
            )
            if session.bind.dialect.name == "postgresql":
                target = target.with_for_update(skip_locked=True)
            won = session.execute(
                update(CallTask)
                .where(CallTask.id == target.scalar_subquery(), CallTask.status == "open")
                .values(
                    status="claimed",
                    claimed_by=agent_id,
                    claimed_at=at,
                    attempts=CallTask.attempts + 1,
                    updated_at=at,
                )
                .returning(CallTask.id)
                .execution_options(synchronize_session=False)
            ).scalar()
            if won is None:
                return None
            task = session.get(CallTask, won, populate_existing=True)
            if not _opted_out(session, task):
                return won
            # an objection that arrived after the list was made (STOP, unsubscribe, another call)
            _cancel(session, task, "opted_out", "customer opted out before the call", at)


def _cancel(session: Session, task: CallTask, outcome: str, why: str, at: datetime) -> None:
    """Close a task that must not be called; its message is cancelled (no contact happened)."""
    task.status, task.outcome, task.claimed_by, task.updated_at = "cancelled", outcome, None, at
    message = session.get(Message, task.message_id)
    reason = "opted_out" if outcome == "opted_out" else "invalid"
    _event(session, message, f"task-{task.id}-cancelled", "failed", why, at, reason=reason)
    ledger.transition(session, [message.id], "cancelled", detail=f"call: {why}")


# --------------------------------------------------------------------------- outcomes


def record_outcome(
    engine: Engine,
    task_id: int,
    agent_id: int,
    outcome: str,
    *,
    scope: str = "phone",
    note: str | None = None,
    now: datetime | None = None,
    settings: CallSettings | None = None,
) -> OutcomeResult:
    """Record what came of the call the agent has in hand (see the module docstring)."""
    if outcome not in OUTCOMES:
        raise CallError(f"unknown outcome {outcome!r}: use one of {', '.join(OUTCOMES)}")
    if outcome == "do_not_contact" and scope not in OPT_OUT_SCOPES:
        raise CallError(f"an objection covers phone or all marketing, not {scope!r}")
    settings = settings or get_call_settings()
    at = _now(now)
    note = (note or "").strip()[:2000] or None
    with session_scope(engine) as session:
        task = session.scalar(select(CallTask).where(CallTask.id == task_id).with_for_update())
        if task is None or task.status != "claimed" or task.claimed_by != agent_id:
            raise CallError(
                f"call {task_id} is not in your hands (it may be finished, expired or someone else's)"
            )
        agent = session.get(Agent, agent_id)
        message = session.get(Message, task.message_id)
        customer = session.get(Customer, task.customer_id)
        session.add(
            CallAttempt(
                task_id=task.id, agent_id=agent_id, attempt=task.attempts, outcome=outcome, note=note, at=at
            )
        )
        event_id = f"task-{task.id}-attempt-{task.attempts}"
        raw = {"task_id": task.id, "attempt": task.attempts, "outcome": outcome, "agent": agent.username}
        task.outcome, task.last_agent_id, task.updated_at = outcome, agent_id, at
        lead_id = retry_at = None

        if outcome == "no_answer":
            retry = at + timedelta(minutes=settings.retry_minutes)
            if task.attempts < settings.max_attempts and retry < as_utc(task.window_end):
                task.status, task.claimed_by, task.next_attempt_at = "open", None, retry
                retry_at = retry
                _event(
                    session,
                    message,
                    event_id,
                    "deferred",
                    f"no answer (call {task.attempts} of {settings.max_attempts}), retry later today",
                    at,
                    raw=raw,
                )
            else:
                _finish(task, at)
                _close_message(
                    session,
                    message,
                    "undelivered",
                    "undelivered",
                    f"no answer after {task.attempts} call(s)",
                    event_id,
                    at,
                    reason="timed_out",
                    raw=raw,
                )
        elif outcome in ("interested", "not_interested"):
            _finish(task, at)
            # "not interested" is the policy's outcome-rule event (contract in outreach.policy.inputs)
            event_type, words = ("delivered", "answered: interested")
            if outcome == "not_interested":
                event_type, words = NOT_INTERESTED
            _close_message(session, message, "delivered", event_type, words, event_id, at, raw=raw)
            if outcome == "interested":
                lead = CallLead(
                    task_id=task.id,
                    customer_id=task.customer_id,
                    offer_code=task.offer_code,
                    team_id=task.team_id,
                    agent_id=agent_id,
                    status="new",
                    note=note,
                    created_at=at,
                )
                session.add(lead)
                session.flush()
                lead_id = lead.id
        elif outcome == "wrong_number":
            _finish(task, at)
            if customer is not None:
                customer.mobile_valid = False
            _close_message(
                session,
                message,
                "bounced",
                "bounced",
                "wrong number: phone marked invalid",
                event_id,
                at,
                reason="invalid",
                error_code="wrong_number",
                raw=raw,
            )
            for other in _other_open_tasks(session, task):
                _cancel(session, other, "wrong_number", "phone number found wrong on another call", at)
        else:  # do_not_contact: effective at once for every channel the objection covers
            _finish(task, at)
            consent.record(
                session,
                task.customer_id,
                scope,
                "opt_out",
                f"call_centre:{agent.username}"[:64],
                at=at,
                actor=consent.Actor("agent", agent.username, event_id),
            )
            _close_message(
                session,
                message,
                "delivered",
                "opted_out",
                f"answered: do not contact ({scope})",
                event_id,
                at,
                reason="opted_out",
                raw=raw | {"scope": scope},
            )
            for other in _other_open_tasks(session, task):
                _cancel(session, other, "opted_out", "customer objected on another call", at)
            _cancel_planned(session, task.customer_id, scope, at)
        audit.append(  # the note may hold personal data: the log says only that there is one
            session,
            "agent.outcome",
            {"task": task.id, "outcome": outcome, "scope": scope, "note": note is not None},
            actor=f"agent:{agent.username}",
            customer_id=task.customer_id,
            at=at,
        )
        session.flush()
        return OutcomeResult(task.status, session.get(Message, message.id).status, retry_at, lead_id)


def _finish(task: CallTask, at: datetime) -> None:
    task.status, task.claimed_by, task.done_at = "done", None, at


def _other_open_tasks(session: Session, task: CallTask) -> list[CallTask]:
    return list(
        session.scalars(
            select(CallTask).where(
                CallTask.customer_id == task.customer_id,
                CallTask.id != task.id,
                CallTask.status == "open",
            )
        )
    )


def _cancel_planned(session: Session, customer_id: str, scope: str, at: datetime) -> int:
    """Messages not yet handed to a provider stop now (dispatch re-checks consent too)."""
    stmt = select(Message.id).where(Message.customer_id == customer_id, Message.status == "planned")
    if scope == "phone":
        stmt = stmt.where(Message.channel == "call")
    ids = list(session.scalars(stmt))
    return ledger.transition(
        session,
        ids,
        "cancelled",
        expected="planned",
        detail=f"opted out ({scope}) on a call at {at.isoformat()}",
    )


# --------------------------------------------------------------------------- expiry


def expire_tasks(
    engine: Engine, run_date: date, *, at: datetime | None = None, settings: CallSettings | None = None
) -> int:
    """Expire the tasks of ``run_date`` and earlier whose calling window has closed by ``at`` (now).

    Tasks do not pile up: what was not done on its calling day ends here, recorded on the task and
    on its message: ``undelivered`` when the customer was rung but not reached, ``failed`` (code
    ``call_not_made``) when nobody got to the call, so it does not count against contact caps.
    A call still in hand gets a grace period.
    """
    settings = settings or get_call_settings()
    at = _now(at)
    grace = timedelta(minutes=settings.claim_grace_minutes)
    with session_scope(engine) as session:
        tasks = list(
            session.scalars(
                select(CallTask).where(
                    CallTask.call_date <= run_date,
                    or_(
                        (CallTask.status == "open") & (CallTask.window_end <= at),
                        (CallTask.status == "claimed") & (CallTask.window_end <= at - grace),
                    ),
                )
            )
        )
        for task in tasks:
            task.status, task.claimed_by, task.expired_at, task.updated_at = "expired", None, at, at
            message = session.get(Message, task.message_id)
            raw = {"task_id": task.id, "attempts": task.attempts}
            if task.attempts:  # rung but never reached: a contact attempt, as an undelivered SMS is
                why = f"not reached by the end of the calling day ({task.attempts} call(s))"
                _close_message(
                    session,
                    message,
                    "undelivered",
                    "undelivered",
                    why,
                    f"task-{task.id}-expired",
                    at,
                    reason="timed_out",
                    raw=raw,
                )
            else:  # never rung: no contact was made, so it must not count against the customer's caps
                why = "not called by the end of the calling day"
                _close_message(
                    session,
                    message,
                    "failed",
                    "failed",
                    why,
                    f"task-{task.id}-expired",
                    at,
                    reason="timed_out",
                    error_code="call_not_made",
                    raw=raw,
                )
        return len(tasks)
