"""The live lane's decisions (no broker): same policy as the daily lane, idempotent per event id,
relevance windows, and the two lanes sharing caps and the ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from outreach.candidates import PaymentSignals, load_candidates
from outreach.config import load_offers
from outreach.live.decide import EXPIRED, TOO_OLD, LiveDecider, live_backlog
from outreach.live.events import PaymentEvent
from outreach.live.tables import LiveEvent
from outreach.models import Decision, Message, Transaction
from outreach.planning import decide_day
from outreach.triggers import default_triggers
from tests.factories import add_candidates, add_consent, add_customers, customer
from tests.fixture_files import OFFERS_FILE

REPO = Path(__file__).resolve().parent.parent
# a Tuesday in the middle of the SMS window (09:00-20:00 Amsterdam): 12:00 local
NOON = datetime(2027, 3, 9, 11, 0, tzinfo=UTC)


def offers():
    return load_offers(OFFERS_FILE)


def decider(engine) -> LiveDecider:
    return LiveDecider(engine, offers(), default_triggers())


def atm(event_id: str, customer_id: str, at: datetime, amount: str = "-200.00") -> PaymentEvent:
    return PaymentEvent(
        event_id=event_id,
        customer_id=customer_id,
        occurred_at=at,
        amount=amount,
        mcc="6011",
        description="Geldautomaat",
        city="Schiphol",
    )


def ledger(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(
                    Message.customer_id, Message.offer_code, Message.channel, Message.status, Message.run_date
                )
            ).all()
        ]


def test_an_airport_withdrawal_plans_the_travel_sms_at_once_and_a_replay_adds_nothing(engine):
    add_customers(engine, customer("C1"), customer("C2"))
    lane = decider(engine)
    first = lane.decide([atm("T1", "C1", NOON - timedelta(seconds=2))], NOON)
    assert first.triggering == 1 and first.duplicates == 0
    assert first.outcomes == {"planned": 1, "lost_arbitration": 1}  # travel insurance beats the card
    assert list(first.to_send) == ["sms"] and len(first.to_send["sms"]) == 1
    assert ledger(engine) == [("C1", "TRAVEL_INSURANCE", "sms", "planned", date(2027, 3, 9))]
    # the same event again (redelivery, replay), alone and next to a new one
    again = lane.decide([atm("T1", "C1", NOON - timedelta(seconds=2))], NOON + timedelta(seconds=5))
    assert (again.triggering, again.duplicates, again.to_send) == (1, 1, {})
    both = lane.decide(
        [atm("T1", "C1", NOON), atm("T2", "C2", NOON), atm("T2", "C2", NOON)], NOON + timedelta(seconds=9)
    )
    assert both.duplicates == 2 and both.outcomes["planned"] == 1
    assert len(ledger(engine)) == 2
    with engine.connect() as conn:
        assert conn.scalar(select(LiveEvent.occurred_at).where(LiveEvent.event_id == "T1")) is not None


def test_a_payment_that_fires_no_trigger_writes_nothing(engine):
    add_customers(engine, customer("C1"))
    shop = PaymentEvent(event_id="S1", customer_id="C1", occurred_at=NOON, amount="-12.50", mcc="5411")
    result = decider(engine).decide([shop], NOON)
    assert (result.triggering, result.outcomes) == (0, {})
    with engine.connect() as conn:
        assert conn.scalar(select(LiveEvent.event_id)) is None


def test_policy_applies_one_offer_per_day_and_consent(engine):
    add_customers(engine, customer("C1"), customer("OUT"))
    add_consent(engine, "OUT", "all", at=NOON - timedelta(days=3))
    lane = decider(engine)
    result = lane.decide([atm("T1", "C1", NOON), atm("T9", "OUT", NOON)], NOON)
    assert result.outcomes["opted_out_global"] == 2
    later = lane.decide([atm("T2", "C1", NOON + timedelta(hours=1))], NOON + timedelta(hours=1))
    assert later.outcomes["contacted_today"] == 2  # the first withdrawal's SMS counts
    assert ledger(engine) == [("C1", "TRAVEL_INSURANCE", "sms", "planned", date(2027, 3, 9))]


def test_an_event_older_than_its_window_is_skipped_with_a_reason(engine):
    add_customers(engine, customer("C1"))
    result = decider(engine).decide([atm("OLD", "C1", NOON - timedelta(hours=6, seconds=1))], NOON)
    assert result.skipped == {TOO_OLD: 1} and result.outcomes == {}
    with engine.connect() as conn:
        row = conn.execute(select(LiveEvent.outcome, LiveEvent.reason)).one()
    assert tuple(row) == ("skipped", TOO_OLD)
    assert ledger(engine) == []


def test_quiet_hours_past_the_window_expire_the_offer_instead_of_holding_it(engine):
    add_customers(engine, customer("C1"), customer("C2"))
    lane = decider(engine)
    late = datetime(2027, 3, 9, 21, 30, tzinfo=UTC)  # 22:30 in Amsterdam: the SMS window opens at 09:00
    result = lane.decide([atm("N1", "C1", late)], late)
    assert result.outcomes[EXPIRED] == 1 and result.to_send == {}
    with engine.connect() as conn:
        decisions = conn.execute(select(Decision.offer_code, Decision.outcome, Decision.reason)).all()
    assert ("TRAVEL_INSURANCE", "suppressed", EXPIRED) in [tuple(d) for d in decisions]
    assert ledger(engine) == []
    # within its window, a held message waits for the opening: 07:00 local, released at 09:00
    early = datetime(2027, 3, 10, 6, 0, tzinfo=UTC)
    held = lane.decide([atm("M1", "C2", early)], early)
    assert held.outcomes["quiet_hours_held"] == 1 and held.to_send == {}
    expired, due = live_backlog(engine, early + timedelta(hours=1), {"airport_atm": 6})
    assert (expired, due) == ([], {})  # not yet released
    expired, due = live_backlog(engine, early + timedelta(hours=2, minutes=1), {"airport_atm": 6})
    assert expired == [] and len(due["sms"]) == 1
    expired, due = live_backlog(engine, early + timedelta(hours=6, minutes=1), {"airport_atm": 6})
    assert len(expired) == 1 and due == {}


def test_the_daily_lane_does_not_send_again_what_the_live_lane_sent(engine):
    add_customers(engine, customer("C1"))
    with engine.begin() as conn:
        conn.execute(
            Transaction.__table__.insert(),
            [
                {
                    "transaction_id": "T1",
                    "customer_id": "C1",
                    "booked_at": NOON,
                    "amount": "-200.00",
                    "mcc": "6011",
                    "description": "Geldautomaat",
                    "city": "Schiphol",
                }
            ],
        )
    decider(engine).decide([atm("T1", "C1", NOON)], NOON)
    tomorrow = date(2027, 3, 10)
    # the withdrawal the live lane acted on is not derived again; another offer meets the shared cap
    report = load_candidates(engine, tomorrow, PaymentSignals(engine), offer_codes=offers().by_code())
    assert report.rows_read == 0
    add_candidates(engine, tomorrow, ("C1", "KIDS_SAVINGS", 0.9))
    decide_day(engine, tomorrow, offers(), now=datetime(2027, 3, 10, 8, 0, tzinfo=UTC))
    with engine.connect() as conn:
        daily = conn.execute(
            select(Decision.offer_code, Decision.reason).where(Decision.decision_date == tomorrow)
        ).all()
    assert [tuple(d) for d in daily] == [("KIDS_SAVINGS", "cap_7d")]
    assert len(ledger(engine)) == 1


def test_a_customer_the_daily_run_contacted_today_gets_no_live_offer(engine):
    add_customers(engine, customer("C1"))
    add_candidates(engine, date(2027, 3, 9), ("C1", "KIDS_SAVINGS", 0.9))
    decide_day(engine, date(2027, 3, 9), offers(), now=datetime(2027, 3, 9, 9, 0, tzinfo=UTC))
    result = decider(engine).decide([atm("T1", "C1", NOON)], NOON)
    assert result.outcomes == {"contacted_today": 2} and result.to_send == {}


def test_explain_names_the_payment_event_behind_a_live_message(engine):
    from outreach.policy.explain import explain_customer

    add_customers(engine, customer("C1"))
    decider(engine).decide([atm("T1", "C1", NOON - timedelta(seconds=3))], NOON)
    result = explain_customer(engine, "C1", date(2027, 3, 9), offers())
    travel = next(c for c in result.candidates if c.offer_code == "TRAVEL_INSURANCE")
    assert (travel.outcome, travel.trigger, travel.trigger_ref) == ("planned", "airport_atm", "T1")
    assert (
        travel.event
        == "live: payment event T1 at 2027-03-09 10:59 UTC, acted on 2027-03-09 11:00 UTC (3.0 s later)"
    )


def test_a_moment_the_live_lane_let_expire_is_not_offered_by_the_next_daily_run(engine):
    add_customers(engine, customer("C1"))
    late = datetime(2027, 3, 9, 21, 30, tzinfo=UTC)  # 22:30 in Amsterdam: quiet hours outlast the window
    with engine.begin() as conn:
        conn.execute(
            Transaction.__table__.insert(),
            [
                {
                    "transaction_id": "N1",
                    "customer_id": "C1",
                    "booked_at": late,
                    "amount": "-200.00",
                    "mcc": "6011",
                    "city": "Schiphol",
                }
            ],
        )
    assert decider(engine).decide([atm("N1", "C1", late)], late).outcomes[EXPIRED] == 1
    report = load_candidates(
        engine, date(2027, 3, 10), PaymentSignals(engine), offer_codes=offers().by_code()
    )
    assert report.loaded == 0  # without the live lane's row the daily lane would offer it (see below)
    with engine.begin() as conn:
        conn.execute(LiveEvent.__table__.delete())
    again = load_candidates(engine, date(2027, 3, 10), PaymentSignals(engine), offer_codes=offers().by_code())
    assert again.loaded == 2
