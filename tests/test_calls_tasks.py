"""Call tasks on SQLite and PostgreSQL: capacity, hours, claims, outcomes, retries and expiry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from outreach import consent
from outreach.calls import tasks
from outreach.calls.models import CallAttempt, CallLead, CallTask, Team
from outreach.calls.progress import team_progress
from outreach.calls.settings import CallSettings
from outreach.db import session_scope
from outreach.models import Customer, DeliveryEventRecord, Message, MessageTransition
from tests.calls_support import (  # noqa: F401 (cheap_hashing is a fixture)
    OFFERS,
    TUESDAY,
    Person,
    add_customers,
    add_team_and_agents,
    add_transaction,
    call_day,
    cheap_hashing,
    dispatch_calls,
    plan_day,
)

TEN = datetime(2026, 11, 24, 10, tzinfo=UTC)  # 11:00 in Amsterdam
SETTINGS = CallSettings(max_attempts=3, retry_minutes=60)

pytestmark = pytest.mark.usefixtures("cheap_hashing")


def _tasks(engine) -> list[CallTask]:
    with session_scope(engine) as session:
        return list(session.scalars(select(CallTask).order_by(CallTask.id)))


def _message(engine, message_id: int) -> Message:
    with session_scope(engine) as session:
        return session.get(Message, message_id)


def _events(engine, message_id: int) -> list[tuple[str, str | None]]:
    with session_scope(engine) as session:
        return [
            (e.event_type, e.reason)
            for e in session.scalars(
                select(DeliveryEventRecord)
                .where(DeliveryEventRecord.message_id == message_id)
                .order_by(DeliveryEventRecord.id)
            )
        ]


def _create(engine, day=TUESDAY) -> tasks.Created:
    return tasks.create_tasks_report(engine, day, offers=OFFERS, settings=SETTINGS)


# --------------------------------------------------------------------------- creation


def test_capacity_takes_the_best_calls_by_priority_then_score(engine):
    add_team_and_agents(engine, "nl-1", "nl", 3, ["jan"])
    people = [
        Person("LOW", offer_code="CREDIT_CARD", score=0.99),  # priority 1
        Person("MID1", offer_code="INVEST_CALL", score=0.2),  # priority 4
        Person("MID2", offer_code="INVEST_CALL", score=0.8),
        Person("TOP", offer_code="KIDS_SAVINGS", score=0.1),  # priority 5
        Person("MID3", offer_code="INVEST_CALL", score=0.5),
    ]
    sent = call_day(engine, TUESDAY, people)
    assert len(sent) == 5

    report = _create(engine)

    assert (report.tasks, report.over_capacity) == (3, 2)
    assert [t.customer_id for t in _tasks(engine)] == ["TOP", "MID2", "MID3"]
    # what did not fit is closed with a reason, not left hanging as "sent"
    with session_scope(engine) as session:
        left = dict(session.execute(select(Message.customer_id, Message.last_error_code)).all())
        statuses = dict(session.execute(select(Message.customer_id, Message.status)).all())
    assert left["LOW"] == left["MID1"] == "over_capacity"
    assert statuses["LOW"] == statuses["MID1"] == "failed"
    assert statuses["TOP"] == "sent"


def test_creation_is_idempotent_and_capacity_counts_earlier_tasks(engine):
    add_team_and_agents(engine, "nl-1", "nl", 2, ["jan"])
    call_day(engine, TUESDAY, [Person("A")])
    assert tasks.create_tasks(engine, TUESDAY, offers=OFFERS) == 1
    assert tasks.create_tasks(engine, TUESDAY, offers=OFFERS) == 0
    # a later batch the same day gets the one place left
    add_customers(engine, [Person("B", mobile="+31611111111"), Person("C", mobile="+31622222222")])
    plan_day(engine, TUESDAY, [Person("B", score=0.9), Person("C", score=0.1)])
    dispatch_calls(engine, TUESDAY)
    report = _create(engine)
    assert (report.tasks, report.over_capacity) == (1, 1)
    assert sorted(t.customer_id for t in _tasks(engine)) == ["A", "B"]


def test_teams_by_language_and_the_any_language_team(engine):
    add_team_and_agents(engine, "nl-1", "nl", 1, ["jan"])
    add_team_and_agents(engine, "any", None, 10, ["sam"])
    call_day(
        engine, TUESDAY, [Person("NL1", score=0.9), Person("NL2", score=0.1), Person("EN1", language="en")]
    )
    assert _create(engine).tasks == 3
    with session_scope(engine) as session:
        teams = dict(session.execute(select(Team.id, Team.name)).all())
        by_customer = {
            customer: teams[team]
            for customer, team in session.execute(select(CallTask.customer_id, CallTask.team_id))
        }
    # the Dutch team takes the best Dutch call; the rest overflow to the team that takes any language
    assert by_customer == {"NL1": "nl-1", "NL2": "any", "EN1": "any"}


def test_no_team_and_no_valid_phone_are_recorded(engine):
    add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    call_day(
        engine, TUESDAY, [Person("EN", language="en"), Person("BROKEN", mobile="0612", mobile_valid=False)]
    )
    report = _create(engine)
    assert (report.tasks, report.no_team, report.no_phone) == (0, 1, 1)
    with session_scope(engine) as session:
        codes = dict(session.execute(select(Message.customer_id, Message.last_error_code)).all())
    assert codes == {"EN": "no_team", "BROKEN": "no_valid_phone"}


def test_tasks_fall_in_the_customers_calling_hours(engine):
    add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    add_team_and_agents(engine, "en-1", "en", 10, ["joe"])
    saturday = date(2026, 11, 28)
    call_day(engine, saturday, [Person("AMS"), Person("NYC", language="en", timezone="America/New_York")])
    _create(engine, saturday)
    by_customer = {t.customer_id: t for t in _tasks(engine)}
    ams, nyc = by_customer["AMS"], by_customer["NYC"]
    assert ams.call_date == nyc.call_date == date(2026, 11, 30)  # the Monday after
    assert ams.next_attempt_at.replace(tzinfo=UTC) == datetime(2026, 11, 30, 8, tzinfo=UTC)  # 09:00 CET
    assert nyc.next_attempt_at.replace(tzinfo=UTC) == datetime(2026, 11, 30, 14, tzinfo=UTC)  # 09:00 EST
    assert nyc.window_end.replace(tzinfo=UTC) == datetime(2026, 12, 1, 1, tzinfo=UTC)  # 20:00 EST


def test_the_trigger_in_plain_words(engine):
    add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    add_customers(engine, [Person("KID"), Person("FLY", mobile="+31633333333")])
    for month in (6, 9):
        add_transaction(
            engine,
            f"svb-{month}",
            "KID",
            datetime(2026, month, 2, tzinfo=UTC),
            amount=250,
            counterparty_name="SVB",
            description="kinderbijslag",
        )
    add_transaction(engine, "atm-1", "FLY", datetime(2026, 11, 3, tzinfo=UTC), amount=-200, city="Schiphol")
    plan_day(
        engine,
        TUESDAY,
        [
            Person("KID", offer_code="KIDS_SAVINGS", trigger="child_benefit", trigger_ref="svb-9"),
            Person("FLY", offer_code="TRAVEL_INSURANCE", trigger="airport_atm", trigger_ref="atm-1"),
        ],
    )
    dispatch_calls(engine, TUESDAY)
    _create(engine)
    words = {t.customer_id: t.trigger_text for t in _tasks(engine)}
    assert words == {
        "KID": "receives child benefit since June 2026",
        "FLY": "withdrew cash at an airport (Schiphol) in November 2026",
    }


# --------------------------------------------------------------------------- claims


def test_claims_come_best_first_within_the_agents_team_only(engine):
    nl = add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    en = add_team_and_agents(engine, "en-1", "en", 10, ["joe"])
    call_day(
        engine,
        TUESDAY,
        [Person("N1", score=0.3), Person("N2", score=0.9), Person("E1", language="en")],
    )
    _create(engine)
    ids = {t.customer_id: t.id for t in _tasks(engine)}

    first = tasks.claim_next(engine, nl["jan"], now=TEN)
    assert first == ids["N2"]
    # one claim takes one task (a LIMIT 1 subquery under IN once took two on PostgreSQL)
    assert [t.id for t in _tasks(engine) if t.status == "claimed"] == [first]
    assert tasks.claim_next(engine, nl["jan"], now=TEN) == first  # a call in hand comes back
    assert tasks.claim_next(engine, en["joe"], now=TEN) == ids["E1"]
    tasks.record_outcome(engine, first, nl["jan"], "not_interested", now=TEN, settings=SETTINGS)
    assert tasks.claim_next(engine, nl["jan"], now=TEN) == ids["N1"]
    # nothing of the Dutch team ever reaches the English agent
    tasks.record_outcome(engine, ids["E1"], en["joe"], "interested", now=TEN, settings=SETTINGS)
    assert tasks.claim_next(engine, en["joe"], now=TEN) is None


def test_no_claims_outside_calling_hours(engine):
    team = add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    call_day(engine, TUESDAY, [Person("A")])
    _create(engine)
    assert tasks.claim_next(engine, team["jan"], now=datetime(2026, 11, 24, 7, 59, tzinfo=UTC)) is None
    assert tasks.claim_next(engine, team["jan"], now=datetime(2026, 11, 24, 19, 0, tzinfo=UTC)) is None
    assert tasks.claim_next(engine, team["jan"], now=datetime(2026, 11, 24, 8, 0, tzinfo=UTC)) is not None


def test_an_opt_out_arriving_after_the_list_was_made_is_honoured_at_claim(engine):
    team = add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    message_ids = call_day(engine, TUESDAY, [Person("STOPPED", score=0.9), Person("OK", score=0.1)])
    _create(engine)
    with session_scope(engine) as session:  # e.g. an SMS STOP with scope "all", or a topic opt-out
        objected = TEN - timedelta(minutes=30)
        consent.record(session, "STOPPED", "topic:investing", "opt_out", "test", at=objected)
    claimed = tasks.claim_next(engine, team["jan"], now=TEN)
    by_customer = {t.customer_id: t for t in _tasks(engine)}
    assert claimed == by_customer["OK"].id
    assert by_customer["STOPPED"].status == "cancelled"
    assert _message(engine, message_ids[0]).status == "cancelled"


# --------------------------------------------------------------------------- outcomes


def _one_call(engine, person: Person | None = None) -> tuple[int, int, int]:
    team = add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    (message_id,) = call_day(engine, TUESDAY, [person or Person("C1")])
    _create(engine)
    task_id = tasks.claim_next(engine, team["jan"], now=TEN)
    assert task_id is not None
    return team["jan"], task_id, message_id


def test_interested_creates_a_lead_and_delivers_the_message(engine):
    agent, task_id, message_id = _one_call(engine)
    result = tasks.record_outcome(engine, task_id, agent, "interested", note="call back Friday", now=TEN)
    assert (result.task_status, result.message_status) == ("done", "delivered")
    with session_scope(engine) as session:
        lead = session.get(CallLead, result.lead_id)
        assert (lead.customer_id, lead.offer_code, lead.note) == ("C1", "INVEST_CALL", "call back Friday")
    assert _events(engine, message_id) == [("delivered", None)]


def test_not_interested_is_an_answered_call(engine):
    agent, task_id, message_id = _one_call(engine)
    result = tasks.record_outcome(engine, task_id, agent, "not_interested", now=TEN)
    assert (result.task_status, result.message_status, result.lead_id) == ("done", "delivered", None)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(CallLead)) == 0
        event = session.scalar(
            select(DeliveryEventRecord).where(DeliveryEventRecord.message_id == message_id)
        )
        assert event.raw["outcome"] == "not_interested"
        # the policy's outcome-rule contract: what the "two not interested" rule reads
        assert (event.event_type, event.description) == ("replied", "not_interested")


def test_wrong_number_marks_the_phone_invalid_and_bounces(engine):
    agent, task_id, message_id = _one_call(engine)
    result = tasks.record_outcome(engine, task_id, agent, "wrong_number", now=TEN)
    assert (result.task_status, result.message_status) == ("done", "bounced")
    with session_scope(engine) as session:
        assert session.get(Customer, "C1").mobile_valid is False
    assert _events(engine, message_id) == [("bounced", "invalid")]


@pytest.mark.parametrize("scope", ["phone", "all"])
def test_do_not_contact_opts_out_at_once_for_what_it_covers(engine, scope):
    agent, task_id, message_id = _one_call(engine)
    # the customer also has an email planned for later today, not yet handed to a provider
    plan_day(engine, TUESDAY, [Person("C1", offer_code="SAVINGS_BOOST")], channel="email")
    with session_scope(engine) as session:
        email_id = session.scalar(select(Message.id).where(Message.channel == "email"))

    result = tasks.record_outcome(engine, task_id, agent, "do_not_contact", scope=scope, now=TEN)

    assert (result.task_status, result.message_status) == ("done", "delivered")
    assert _events(engine, message_id) == [("opted_out", "opted_out")]
    with session_scope(engine) as session:
        state = consent.current(session, "C1")
        assert state.choices[scope] == "opt_out"
        assert consent.history(session, "C1")[-1].source == "call_centre:jan"
        assert (consent.history(session, "C1")[-1].actor_kind, consent.history(session, "C1")[-1].actor) == (
            "agent",
            "jan",
        )
        assert consent.latest_opted_out(session, ["C1"], {"all", "phone"}) == {"C1"}
        assert state.allows("email") is (scope == "phone")
    assert _message(engine, email_id).status == ("planned" if scope == "phone" else "cancelled")


def test_outcome_only_by_the_agent_holding_the_call_and_only_once(engine):
    agent, task_id, _ = _one_call(engine)
    with session_scope(engine) as session:
        from outreach.calls import accounts

        other = accounts.add_agent(session, "piet", "correct horse battery", "nl-1").id
    with pytest.raises(tasks.CallError):
        tasks.record_outcome(engine, task_id, other, "interested", now=TEN)
    tasks.record_outcome(engine, task_id, agent, "interested", now=TEN)
    with pytest.raises(tasks.CallError):
        tasks.record_outcome(engine, task_id, agent, "interested", now=TEN)
    with pytest.raises(tasks.CallError, match="unknown outcome"):
        tasks.record_outcome(engine, task_id, agent, "maybe", now=TEN)


def test_no_answer_retries_later_today_at_most_n_times(engine):
    agent, task_id, message_id = _one_call(engine)
    at = TEN
    for attempt in (1, 2):
        result = tasks.record_outcome(engine, task_id, agent, "no_answer", now=at, settings=SETTINGS)
        assert result.task_status == "open", f"call {attempt}"
        assert result.retry_at == at + timedelta(minutes=60)
        assert tasks.claim_next(engine, agent, now=at + timedelta(minutes=59)) is None  # not yet
        at += timedelta(minutes=60)
        assert tasks.claim_next(engine, agent, now=at) == task_id
    result = tasks.record_outcome(engine, task_id, agent, "no_answer", now=at, settings=SETTINGS)
    assert (result.task_status, result.message_status, result.retry_at) == ("done", "undelivered", None)
    task = _tasks(engine)[0]
    assert (task.attempts, task.outcome) == (3, "no_answer")
    assert _events(engine, message_id) == [
        ("deferred", None),
        ("deferred", None),
        ("undelivered", "timed_out"),
    ]
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(CallAttempt)) == 3


def test_no_answer_late_in_the_day_is_not_retried_after_hours(engine):
    agent, task_id, _ = _one_call(engine)
    late = datetime(2026, 11, 24, 18, 30, tzinfo=UTC)  # 19:30 in Amsterdam: a retry would be after 20:00
    tasks.claim_next(engine, agent, now=late)
    result = tasks.record_outcome(engine, task_id, agent, "no_answer", now=late, settings=SETTINGS)
    assert (result.task_status, result.message_status) == ("done", "undelivered")


# --------------------------------------------------------------------------- expiry


def test_tasks_not_done_by_the_end_of_the_day_expire_and_are_recorded(engine):
    team = add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    ids = call_day(
        engine, TUESDAY, [Person("DONE", score=0.9), Person("OPEN", score=0.1), Person("RETRY", score=0.5)]
    )
    _create(engine)
    done = tasks.claim_next(engine, team["jan"], now=TEN)
    tasks.record_outcome(engine, done, team["jan"], "interested", now=TEN)
    retry = tasks.claim_next(engine, team["jan"], now=TEN)
    tasks.record_outcome(engine, retry, team["jan"], "no_answer", now=TEN, settings=SETTINGS)

    assert tasks.expire_tasks(engine, TUESDAY, at=datetime(2026, 11, 24, 18, 59, tzinfo=UTC)) == 0  # 19:59
    assert tasks.expire_tasks(engine, TUESDAY, at=datetime(2026, 11, 24, 19, 0, tzinfo=UTC)) == 2
    assert tasks.expire_tasks(engine, TUESDAY, at=datetime(2026, 11, 25, 9, 0, tzinfo=UTC)) == 0  # once

    states = {t.customer_id: t.status for t in _tasks(engine)}
    assert states == {"DONE": "done", "OPEN": "expired", "RETRY": "expired"}
    # rung but not reached counts as a contact; never rung does not (it is no contact at all)
    assert [_message(engine, m).status for m in ids] == ["delivered", "failed", "undelivered"]
    assert _message(engine, ids[1]).last_error_code == "call_not_made"
    assert _events(engine, ids[1]) == [("failed", "timed_out")]
    assert _events(engine, ids[2]) == [("deferred", None), ("undelivered", "timed_out")]
    # expired tasks never come back the next day
    assert tasks.claim_next(engine, team["jan"], now=datetime(2026, 11, 25, 10, tzinfo=UTC)) is None
    with session_scope(engine) as session:
        progress = team_progress(session, 1, TUESDAY)
        assert dict(progress.states) == {"done": 1, "expired": 2}
        (jan,) = progress.agents
        assert (jan.done, jan.expired, jan.calls) == (1, 1, 2)
        assert dict(jan.outcomes) == {"interested": 1, "no_answer": 1}
        transitions = session.scalars(
            select(MessageTransition.to_status).where(MessageTransition.message_id == ids[2])
        ).all()
    assert transitions[-1] == "undelivered"


def test_a_call_in_hand_at_closing_time_gets_a_grace_period(engine):
    agent, task_id, _ = _one_call(engine)
    grace = CallSettings(claim_grace_minutes=60)
    assert (
        tasks.expire_tasks(engine, TUESDAY, at=datetime(2026, 11, 24, 19, 30, tzinfo=UTC), settings=grace)
        == 0
    )
    assert (
        tasks.expire_tasks(engine, TUESDAY, at=datetime(2026, 11, 24, 20, 0, tzinfo=UTC), settings=grace) == 1
    )
    with pytest.raises(tasks.CallError):
        tasks.record_outcome(
            engine, task_id, agent, "interested", now=datetime(2026, 11, 24, 20, 5, tzinfo=UTC)
        )


# --------------------------------------------------------------------------- later plans


def test_an_objection_on_a_call_keeps_the_customer_out_of_later_plans(engine):
    """Tomorrow's plan drops a "no marketing at all" customer; a phone-only objection drops calls only."""
    from outreach.config import Offer
    from outreach.planning import decide_day
    from tests.factories import add_candidates

    team = add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    call_day(
        engine, TUESDAY, [Person("ALL", score=0.9), Person("PHONE", score=0.5), Person("NOT", score=0.1)]
    )
    _create(engine)
    for outcome, scope in (
        ("do_not_contact", "all"),
        ("do_not_contact", "phone"),
        ("not_interested", "phone"),
    ):
        task_id = tasks.claim_next(engine, team["jan"], now=TEN)
        tasks.record_outcome(engine, task_id, team["jan"], outcome, scope=scope, now=TEN)

    tomorrow = date(2026, 11, 25)
    add_customers(engine, [Person("FRESH", mobile="+31699999999")])
    add_candidates(engine, tomorrow, ("ALL", "SAVINGS_BOOST"), ("FRESH", "SAVINGS_BOOST"))
    decide_day(engine, tomorrow, OFFERS, now=datetime(2026, 11, 25, 9, tzinfo=UTC))
    # past the 7-day cap, with a second call offer (the first is in its 90-day cooldown)
    later = date(2026, 12, 3)
    call_back = Offer(
        code="CALL_BACK", product="advice", topic="advice", priority=3, channels=["call", "email"]
    )
    offers = OFFERS.model_copy(update={"offers": [*OFFERS.offers, call_back]})
    add_candidates(engine, later, ("ALL", "CALL_BACK"), ("PHONE", "CALL_BACK"), ("NOT", "CALL_BACK"))
    decide_day(engine, later, offers, now=datetime(2026, 12, 3, 9, tzinfo=UTC))

    with session_scope(engine) as session:
        from outreach.models import Decision

        decided = {
            (d.decision_date, d.customer_id): (d.outcome, d.reason, d.channel)
            for d in session.scalars(select(Decision))
        }
    assert decided[(tomorrow, "ALL")] == ("suppressed", "opted_out_global", None)
    assert decided[(tomorrow, "FRESH")] == ("planned", "planned", "email")  # the plan itself works
    assert decided[(later, "ALL")] == ("suppressed", "opted_out_global", None)
    assert decided[(later, "PHONE")] == ("planned", "planned", "email")  # no call, other channels fine
    assert decided[(later, "NOT")] == ("planned", "planned", "call")  # "not interested" is no objection
