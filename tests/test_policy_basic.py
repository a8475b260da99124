"""The decision engine on real storage: each rule, one outcome per candidate, the counts add up."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from outreach.config import load_offers
from outreach.db import as_utc, session_scope
from outreach.funnel import compute
from outreach.models import Decision, Message
from outreach.planning import decide_day
from tests.factories import add_candidates, add_consent, add_customers, add_holding, add_suppression, customer
from tests.fixture_files import OFFERS_FILE

DAY = date(2026, 11, 18)  # a Wednesday
NOON = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)  # 12:00 in Amsterdam: inside every window
NIGHT = datetime(2026, 11, 18, 22, 30, tzinfo=UTC)  # 23:30 in Amsterdam: SMS and calls are quiet


@pytest.fixture
def offers(tmp_path):
    return load_offers(OFFERS_FILE)


def decisions(engine) -> dict[str, Decision]:
    with session_scope(engine) as session:
        return {d.customer_id + ":" + d.offer_code: d for d in session.scalars(select(Decision))}


def test_every_rule_gives_its_reason_and_counts_add_up(engine, offers):
    add_customers(
        engine,
        customer("OK1"),
        customer("GLOBAL"),
        customer("NOSMS"),
        customer("ARREARS"),
        customer("HOLDS"),
        customer("NOCONTACT", email_valid=False, mobile_valid=False, address_valid=False),
        customer("TOPIC"),
        customer("TWO"),
    )
    add_consent(engine, "GLOBAL", "all")
    add_consent(engine, "NOSMS", "sms")
    add_consent(engine, "NOSMS", "email")
    add_consent(engine, "TOPIC", "topic:insurance")
    add_suppression(engine, "ARREARS", "arrears", date(2026, 1, 1))
    add_holding(engine, "HOLDS", "childrens_savings")
    add_candidates(
        engine,
        DAY,
        ("OK1", "KIDS_SAVINGS"),
        ("GLOBAL", "KIDS_SAVINGS"),
        ("NOSMS", "TRAVEL_INSURANCE"),
        ("ARREARS", "CREDIT_CARD"),
        ("HOLDS", "KIDS_SAVINGS"),
        ("NOCONTACT", "KIDS_SAVINGS"),
        ("TOPIC", "TRAVEL_INSURANCE"),
        ("TWO", "KIDS_SAVINGS", 0.9),
        ("TWO", "CREDIT_CARD", 0.9),
        ("GHOST", "KIDS_SAVINGS"),
        ("OK1", "NO_SUCH_OFFER"),
    )
    report = decide_day(engine, DAY, offers, now=NOON)
    assert report.decided == 11
    got = {k: (d.outcome, d.reason, d.channel) for k, d in decisions(engine).items()}
    assert got["OK1:KIDS_SAVINGS"] == ("planned", "planned", "email")
    assert got["GLOBAL:KIDS_SAVINGS"] == ("suppressed", "opted_out_global", None)
    assert got["NOSMS:TRAVEL_INSURANCE"] == ("suppressed", "opted_out_channel", None)
    assert got["ARREARS:CREDIT_CARD"] == ("suppressed", "suppressed_arrears", None)
    assert got["HOLDS:KIDS_SAVINGS"] == ("suppressed", "holds_product", None)
    assert got["NOCONTACT:KIDS_SAVINGS"] == ("suppressed", "no_valid_contact", None)
    assert got["TOPIC:TRAVEL_INSURANCE"] == ("suppressed", "opted_out_topic", None)
    assert got["TWO:KIDS_SAVINGS"][0] == "planned"  # priority 5 beats 1
    assert got["TWO:CREDIT_CARD"] == ("suppressed", "lost_arbitration", None)
    assert got["GHOST:KIDS_SAVINGS"] == ("rejected", "unknown_customer", None)
    assert got["OK1:NO_SUCH_OFFER"] == ("rejected", "unknown_offer", None)

    funnel = compute(engine, DAY)
    assert funnel.balanced and funnel.candidates == 11
    assert funnel.planned == 2 and report.messages_planned == 2


def test_channel_falls_back_in_offer_order(engine, offers):
    add_customers(
        engine, customer("A", email_valid=False), customer("B", email_valid=False, mobile_valid=False)
    )
    add_candidates(engine, DAY, ("A", "KIDS_SAVINGS"), ("B", "KIDS_SAVINGS"))
    decide_day(engine, DAY, offers, now=NOON)
    got = decisions(engine)
    assert got["A:KIDS_SAVINGS"].channel == "sms"
    assert got["B:KIDS_SAVINGS"].channel == "letter"


def test_quiet_hours_hold_with_release_time_in_customer_zone(engine, offers):
    add_customers(
        engine,
        customer("NL", email_valid=False),
        customer("NY", email_valid=False, timezone="America/New_York"),
    )
    add_candidates(engine, DAY, ("NL", "TRAVEL_INSURANCE"), ("NY", "TRAVEL_INSURANCE"))
    decide_day(engine, DAY, offers, now=NIGHT)
    got = decisions(engine)
    assert got["NL:TRAVEL_INSURANCE"].outcome == "held"
    assert as_utc(got["NL:TRAVEL_INSURANCE"].release_at) == datetime(2026, 11, 19, 8, 0, tzinfo=UTC)
    assert got["NL:TRAVEL_INSURANCE"].detail is None  # the release time is typed, not text
    assert got["NY:TRAVEL_INSURANCE"].outcome == "planned"  # 17:30 in New York
    with session_scope(engine) as session:
        held = session.scalars(select(Message).where(Message.customer_id == "NL")).one()
    assert held.status == "planned" and held.not_before is not None


def test_deciding_twice_changes_nothing(engine, offers):
    add_customers(engine, customer("A"))
    add_candidates(engine, DAY, ("A", "KIDS_SAVINGS"))
    first = decide_day(engine, DAY, offers, now=NOON)
    second = decide_day(engine, DAY, offers, now=NOON)
    assert (first.decided, first.messages_planned) == (1, 1)
    assert (second.decided, second.messages_planned) == (0, 0)
