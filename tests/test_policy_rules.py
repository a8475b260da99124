"""Each policy rule on real storage (SQLite and PostgreSQL), with the issue's defaults and overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from outreach import consent, ledger
from outreach.config import OffersFile, load_offers
from outreach.db import as_utc, session_scope
from outreach.models import Decision, DeliveryEventRecord, Message
from outreach.planning import decide_day
from outreach.policy import decide, load_inputs
from tests.factories import add_candidates, add_consent, add_customers, add_holding, add_suppression, customer
from tests.fixture_files import OFFERS_FILE

DAY = date(2026, 11, 18)  # a Wednesday
NOON = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)


def offers_with(**policy) -> OffersFile:
    base = load_offers(OFFERS_FILE)
    data = base.model_dump()
    data["policy"].update(policy)
    return OffersFile.model_validate(data)


def outcomes(engine, offers: OffersFile, day: date = DAY, now: datetime = NOON) -> dict[str, tuple]:
    frame = decide(load_inputs(engine, day, offers, now))
    return {
        f"{r['customer_id']}:{r['offer_code']}": (r["reason"], r["channel"])
        for r in frame.iter_rows(named=True)
    }


def add_messages(engine, *items: tuple) -> list[int]:
    """items: (customer, offer, channel, run_date, status)"""
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "idempotency_key": ledger.idempotency_key(day, cid, offer, channel),
            "run_date": day,
            "customer_id": cid,
            "offer_code": offer,
            "channel": channel,
            "status": status,
            "attempts": 1,
            "created_at": stamp,
            "updated_at": stamp,
        }
        for cid, offer, channel, day, status in items
    ]
    with session_scope(engine) as session:
        session.execute(insert(Message), rows)
        return list(session.scalars(select(Message.id).order_by(Message.id)))[-len(rows) :]


def test_consent_latest_per_scope_wins_and_global_beats_channel(engine):
    add_customers(engine, *[customer(c) for c in ("BACK", "GLOBAL", "TOPIC", "LATER", "EMAILOUT")])
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    add_consent(engine, "BACK", "all", "opt_out", t0)
    add_consent(engine, "BACK", "all", "opt_in", t0 + timedelta(days=1))  # changed their mind: in again
    add_consent(engine, "GLOBAL", "email", "opt_in", t0 + timedelta(days=2))
    add_consent(engine, "GLOBAL", "all", "opt_out", t0)  # older, but a global opt-out beats a channel opt-in
    add_consent(engine, "TOPIC", "topic:savings", "opt_out", t0)
    add_consent(engine, "TOPIC", "topic:savings", "opt_in", t0 + timedelta(days=1))
    add_consent(engine, "LATER", "all", "opt_out", NOON + timedelta(minutes=5))  # after the decision moment
    add_consent(engine, "EMAILOUT", "email", "opt_out", t0)
    add_candidates(
        engine, DAY, *[(c, "KIDS_SAVINGS") for c in ("BACK", "GLOBAL", "TOPIC", "LATER", "EMAILOUT")]
    )
    got = outcomes(engine, load_offers(OFFERS_FILE))
    assert got["BACK:KIDS_SAVINGS"] == ("planned", "email")
    assert got["GLOBAL:KIDS_SAVINGS"] == ("opted_out_global", None)
    assert got["TOPIC:KIDS_SAVINGS"] == ("planned", "email")
    assert got["LATER:KIDS_SAVINGS"] == ("planned", "email")
    assert got["EMAILOUT:KIDS_SAVINGS"] == ("planned", "sms")  # the next channel in the offer's order


def test_telemarketing_needs_an_explicit_opt_in_when_configured(engine):
    add_customers(engine, customer("NOOPT"), customer("OPTED"), customer("NOMAIL", email_valid=False))
    add_consent(engine, "OPTED", "phone", "opt_in")
    add_candidates(engine, DAY, ("NOOPT", "INVEST_CALL"), ("OPTED", "INVEST_CALL"), ("NOMAIL", "INVEST_CALL"))
    offers = offers_with(opt_in_channels=["call"])
    frame = decide(load_inputs(engine, DAY, offers, NOON))
    got = {
        r["customer_id"]: (r["reason"], r["channel"], r["legal_basis"]) for r in frame.iter_rows(named=True)
    }
    assert got["NOOPT"] == ("planned", "email", "legitimate_interest")
    assert got["OPTED"] == ("planned", "call", "consent")
    # call lacks the opt-in, email lacks an address
    assert got["NOMAIL"] == ("no_valid_contact", None, "legitimate_interest")
    # the default (opt-out model) calls without an opt-in
    assert outcomes(engine, load_offers(OFFERS_FILE))["NOOPT:INVEST_CALL"] == ("planned", "call")


def test_suppression_windows_scopes_and_severity(engine):
    names = ("EXPIRED", "FUTURE", "LASTDAY", "ARREARS", "BOTH", "FRAUD")
    add_customers(engine, *[customer(c) for c in names])
    add_suppression(engine, "EXPIRED", "vulnerable", date(2026, 1, 1), DAY - timedelta(days=1))
    add_suppression(engine, "FUTURE", "deceased", DAY + timedelta(days=1))
    add_suppression(engine, "LASTDAY", "minor", date(2026, 1, 1), DAY)  # valid_until is inclusive
    add_suppression(engine, "ARREARS", "arrears", date(2026, 1, 1))
    add_suppression(engine, "BOTH", "complaint", date(2026, 1, 1))
    add_suppression(engine, "BOTH", "deceased", date(2026, 1, 1))
    add_suppression(engine, "FRAUD", "fraud", date(2026, 1, 1))  # a list the policy does not name
    add_candidates(engine, DAY, *[(c, "KIDS_SAVINGS") for c in names], ("ARREARS", "CREDIT_CARD", 0.1))
    got = outcomes(engine, load_offers(OFFERS_FILE))
    assert got["EXPIRED:KIDS_SAVINGS"][0] == "planned"
    assert got["FUTURE:KIDS_SAVINGS"][0] == "planned"
    assert got["LASTDAY:KIDS_SAVINGS"][0] == "suppressed_minor"
    assert got["ARREARS:KIDS_SAVINGS"][0] == "suppressed_arrears"  # default: arrears blocks all marketing
    assert got["ARREARS:CREDIT_CARD"][0] == "suppressed_arrears"
    assert got["BOTH:KIDS_SAVINGS"][0] == "suppressed_deceased"  # the most severe list names the reason
    assert got["FRAUD:KIDS_SAVINGS"][0] == "suppressed_other"
    narrowed = offers_with(
        suppression_scopes={"arrears": ["credit"], "deceased": "all", "minor": "all", "complaint": "all"}
    )
    got = outcomes(engine, narrowed)
    assert got["ARREARS:KIDS_SAVINGS"][0] == "planned"  # savings allowed, credit never
    assert got["ARREARS:CREDIT_CARD"][0] == "suppressed_arrears"
    assert got["BOTH:KIDS_SAVINGS"][0] == "suppressed_deceased"


def test_caps_and_cooldown_count_the_ledger_as_of_the_run_date(engine):
    names = ("D3", "D6", "D7", "FAILED", "HELD", "COOL", "COOLED", "TODAY")
    add_customers(engine, *[customer(c) for c in names])
    add_messages(
        engine,
        ("D3", "SAVINGS_BOOST", "email", DAY - timedelta(days=3), "delivered"),
        ("D6", "SAVINGS_BOOST", "email", DAY - timedelta(days=6), "sent"),
        ("D7", "SAVINGS_BOOST", "email", DAY - timedelta(days=7), "delivered"),  # just outside 7 days
        ("FAILED", "SAVINGS_BOOST", "email", DAY - timedelta(days=2), "failed"),  # never reached them
        (
            "HELD",
            "SAVINGS_BOOST",
            "sms",
            DAY - timedelta(days=1),
            "planned",
        ),  # still waiting: reserves the cap
        ("COOL", "KIDS_SAVINGS", "email", DAY - timedelta(days=89), "delivered"),
        ("COOLED", "KIDS_SAVINGS", "email", DAY - timedelta(days=90), "delivered"),
        ("TODAY", "SAVINGS_BOOST", "email", DAY, "planned"),  # an earlier run today planned one
    )
    add_candidates(engine, DAY, *[(c, "KIDS_SAVINGS") for c in names])
    got = outcomes(engine, load_offers(OFFERS_FILE))
    assert got["D3:KIDS_SAVINGS"][0] == "cap_7d"
    assert got["D6:KIDS_SAVINGS"][0] == "cap_7d"
    assert got["D7:KIDS_SAVINGS"][0] == "planned"
    assert got["FAILED:KIDS_SAVINGS"][0] == "planned"
    assert got["HELD:KIDS_SAVINGS"][0] == "cap_7d"
    assert got["COOL:KIDS_SAVINGS"][0] == "cooldown_offer"
    assert got["COOLED:KIDS_SAVINGS"][0] == "planned"
    assert got["TODAY:KIDS_SAVINGS"][0] == "contacted_today"
    # three in 30 days
    add_customers(engine, customer("THREE"))
    add_messages(
        engine,
        *[("THREE", "SAVINGS_BOOST", "email", DAY - timedelta(days=d), "delivered") for d in (8, 15, 29)],
    )
    add_candidates(engine, DAY, ("THREE", "TRAVEL_INSURANCE"))
    assert outcomes(engine, load_offers(OFFERS_FILE))["THREE:TRAVEL_INSURANCE"][0] == "cap_30d"


def test_per_channel_caps_move_to_the_next_channel_or_stop(engine):
    add_customers(engine, customer("SMSCAP"), customer("ONLYSMS", email_valid=False))
    add_messages(
        engine,
        ("SMSCAP", "KIDS_SAVINGS", "sms", DAY - timedelta(days=10), "delivered"),
        ("ONLYSMS", "KIDS_SAVINGS", "sms", DAY - timedelta(days=10), "delivered"),
    )
    add_candidates(engine, DAY, ("SMSCAP", "TRAVEL_INSURANCE"), ("ONLYSMS", "TRAVEL_INSURANCE"))
    offers = offers_with(caps={"per_7_days": 1, "per_30_days": 3, "per_channel_30_days": {"sms": 1}})
    got = outcomes(engine, offers)
    assert got["SMSCAP:TRAVEL_INSURANCE"] == ("planned", "email")
    assert got["ONLYSMS:TRAVEL_INSURANCE"] == ("cap_channel", None)


def test_two_not_interested_answers_suppress_the_topic_for_180_days(engine):
    add_customers(engine, *[customer(c) for c in ("TWICE", "ONCE", "LONGAGO", "OTHERTOPIC")])
    base = DAY - timedelta(days=100)
    ids = add_messages(
        engine,
        ("TWICE", "KIDS_SAVINGS", "call", base, "sent"),
        ("TWICE", "SAVINGS_BOOST", "call", base + timedelta(days=40), "sent"),
        ("ONCE", "KIDS_SAVINGS", "call", base, "sent"),
        ("LONGAGO", "KIDS_SAVINGS", "call", DAY - timedelta(days=200), "sent"),
        ("LONGAGO", "SAVINGS_BOOST", "call", DAY - timedelta(days=190), "sent"),
        ("OTHERTOPIC", "TRAVEL_INSURANCE", "call", base, "sent"),
        ("OTHERTOPIC", "CREDIT_CARD", "call", base + timedelta(days=1), "sent"),
    )
    days = [
        base,
        base + timedelta(days=40),
        base,
        DAY - timedelta(days=200),
        DAY - timedelta(days=190),
        base,
        base,
    ]
    with session_scope(engine) as session:
        session.execute(
            insert(DeliveryEventRecord),
            [
                {
                    "message_id": mid,
                    "channel": "call",
                    "provider": "callcentre",
                    "provider_event_id": f"ev{mid}",
                    "event_type": "replied",
                    "description": "not_interested",
                    "occurred_at": datetime.combine(day, datetime.min.time(), tzinfo=UTC)
                    + timedelta(hours=12),
                    "received_at": datetime.combine(day, datetime.min.time(), tzinfo=UTC)
                    + timedelta(hours=12),
                }
                for mid, day in zip(ids, days, strict=True)
            ],
        )
    add_candidates(engine, DAY, *[(c, "SAVINGS_BOOST") for c in ("TWICE", "ONCE", "LONGAGO", "OTHERTOPIC")])
    got = outcomes(engine, load_offers(OFFERS_FILE))
    assert got["TWICE:SAVINGS_BOOST"][0] == "not_interested_topic"
    assert got["ONCE:SAVINGS_BOOST"][0] == "planned"
    assert got["LONGAGO:SAVINGS_BOOST"][0] == "planned"  # the second answer is 190 days old: over
    assert got["OTHERTOPIC:SAVINGS_BOOST"][0] == "planned"  # answers on other topics do not count


def test_capacity_goes_to_the_best_of_the_day_with_fallback(engine):
    add_customers(
        engine,
        customer("LOW"),
        customer("HIGH"),
        customer("MID"),
        customer("MIDNOMAIL", email_valid=False),
    )
    # inserted worst first: allocation must not be first come, first served
    add_candidates(
        engine,
        DAY,
        ("LOW", "INVEST_CALL", 0.1),
        ("MIDNOMAIL", "INVEST_CALL", 0.5),
        ("MID", "INVEST_CALL", 0.6),
        ("HIGH", "INVEST_CALL", 0.9),
    )
    got = outcomes(engine, offers_with(capacity={"call": 1}))
    assert got["HIGH:INVEST_CALL"] == ("planned", "call")
    assert got["MID:INVEST_CALL"] == ("planned", "email")  # fell back to the next allowed channel
    assert got["LOW:INVEST_CALL"] == ("planned", "email")
    assert got["MIDNOMAIL:INVEST_CALL"] == ("over_capacity", None)
    got = outcomes(engine, offers_with(capacity={"call": 2, "email": 1}))
    assert got["HIGH:INVEST_CALL"][1] == "call" and got["MID:INVEST_CALL"][1] == "call"
    assert got["MIDNOMAIL:INVEST_CALL"][0] == "over_capacity"  # no email address, call full
    assert got["LOW:INVEST_CALL"] == ("planned", "email")


def test_arbitration_ties_are_deterministic(engine):
    add_customers(engine, customer("TIE"))
    add_candidates(engine, DAY, ("TIE", "SAVINGS_BOOST", 0.5), ("TIE", "TRAVEL_INSURANCE", 0.75))
    got = outcomes(engine, load_offers(OFFERS_FILE))  # 3 × 0.5 == 2 × 0.75: the offer code decides
    assert got["TIE:SAVINGS_BOOST"][0] == "planned"
    assert got["TIE:TRAVEL_INSURANCE"][0] == "lost_arbitration"


def test_an_opt_out_between_planning_and_sending_is_honoured(engine, tmp_path):
    from channels import load_channel
    from outreach.config import Settings
    from outreach.dispatch import Dispatcher

    add_customers(engine, customer("STAYS"), customer("LEAVES"), customer("TOPICOUT"), customer("SMSOUT"))
    add_candidates(engine, DAY, *[(c, "KIDS_SAVINGS") for c in ("STAYS", "LEAVES", "TOPICOUT", "SMSOUT")])
    offers = load_offers(OFFERS_FILE)
    decide_day(engine, DAY, offers, now=NOON)
    objected = NOON + timedelta(minutes=5)  # the test's clock, never the wall clock
    with session_scope(engine) as session:  # objections arrive while the run is going
        consent.record(session, "LEAVES", "all", "opt_out", "phone", at=objected)
        consent.record(session, "TOPICOUT", "topic:savings", "opt_out", "web", at=objected)
        consent.record(session, "SMSOUT", "sms", "opt_out", "sms STOP", at=objected)  # not planned channel
    settings = Settings(database_url=str(engine.url), outbox_dir=tmp_path / "outbox")
    channel = load_channel("email", "outbox", outbox_dir=settings.outbox_dir)
    with session_scope(engine) as session:
        ids = ledger.due_ids(session, DAY, "email", NOON)
    report = Dispatcher(engine, settings, offers, channel, "w1").send_ids(ids)
    assert (report.sent, report.cancelled) == (2, 2)
    with session_scope(engine) as session:
        status = {m.customer_id: m.status for m in session.scalars(select(Message))}
    assert status == {"STAYS": "sent", "LEAVES": "cancelled", "TOPICOUT": "cancelled", "SMSOUT": "sent"}
    # and the next day's plan leaves them out
    add_candidates(
        engine, DAY + timedelta(days=8), ("LEAVES", "SAVINGS_BOOST"), ("TOPICOUT", "SAVINGS_BOOST")
    )
    got = outcomes(engine, offers, DAY + timedelta(days=8), NOON + timedelta(days=8))
    assert got["LEAVES:SAVINGS_BOOST"][0] == "opted_out_global"
    assert got["TOPICOUT:SAVINGS_BOOST"][0] == "opted_out_topic"


def test_held_message_is_not_due_before_its_release(engine):
    add_customers(engine, customer("NIGHT", email_valid=False))
    add_candidates(engine, DAY, ("NIGHT", "TRAVEL_INSURANCE"))
    night = datetime(2026, 11, 18, 21, 30, tzinfo=UTC)  # 22:30 in Amsterdam
    decide_day(engine, DAY, load_offers(OFFERS_FILE), now=night)
    release = datetime(2026, 11, 19, 8, 0, tzinfo=UTC)  # 09:00 CET
    with session_scope(engine) as session:
        assert ledger.due_ids(session, DAY, "sms", release - timedelta(seconds=1)) == []
        assert len(ledger.due_ids(session, DAY, "sms", release)) == 1


@pytest.mark.parametrize(
    ("now", "tz", "expected"),
    [
        # last Sunday of March: clocks go 02:00 -> 03:00; 09:00 CEST is 07:00 UTC
        (
            datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
            "Europe/Amsterdam",
            datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
        ),
        # the evening before: still winter time, opens 09:00 CET = 08:00 UTC... on the summer-time Sunday
        (
            datetime(2026, 3, 28, 21, 0, tzinfo=UTC),
            "Europe/Amsterdam",
            datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
        ),
        # last Sunday of October: 03:00 -> 02:00; 09:00 CET is 08:00 UTC
        (
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            "Europe/Amsterdam",
            datetime(2026, 10, 25, 8, 0, tzinfo=UTC),
        ),
        (
            datetime(2026, 10, 24, 19, 0, tzinfo=UTC),
            "Europe/Amsterdam",
            datetime(2026, 10, 25, 8, 0, tzinfo=UTC),
        ),
        # a customer in New York: 22:30 UTC is 17:30 there, inside the window
        (datetime(2026, 11, 18, 22, 30, tzinfo=UTC), "America/New_York", None),
        # Tokyo: 12:00 UTC is 21:00 there; opens 09:00 JST = 00:00 UTC
        (datetime(2026, 11, 18, 12, 0, tzinfo=UTC), "Asia/Tokyo", datetime(2026, 11, 19, 0, 0, tzinfo=UTC)),
    ],
)
def test_sms_windows_follow_dst_and_the_customers_zone(now, tz, expected):
    from outreach.policy.windows import release_time

    window = load_offers(OFFERS_FILE).policy.quiet_hours["sms"]
    assert release_time(now, window, tz) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # King's Day, Monday 27 April 2026: no calls; Tuesday 09:00 CEST
        (datetime(2026, 4, 27, 10, 0, tzinfo=UTC), datetime(2026, 4, 28, 7, 0, tzinfo=UTC)),
        # Easter Monday 6 April 2026
        (datetime(2026, 4, 6, 10, 0, tzinfo=UTC), datetime(2026, 4, 7, 7, 0, tzinfo=UTC)),
        # Christmas Friday and Boxing Day Saturday, then Sunday: Monday 28 December 09:00 CET
        (datetime(2026, 12, 24, 19, 30, tzinfo=UTC), datetime(2026, 12, 28, 8, 0, tzinfo=UTC)),
        # a Saturday: Monday
        (datetime(2026, 11, 21, 10, 0, tzinfo=UTC), datetime(2026, 11, 23, 8, 0, tzinfo=UTC)),
        # an ordinary Wednesday within hours: no hold
        (datetime(2026, 11, 18, 10, 0, tzinfo=UTC), None),
    ],
)
def test_calls_only_on_working_days_never_on_dutch_holidays(now, expected):
    from outreach.policy.windows import release_time

    window = load_offers(OFFERS_FILE).policy.quiet_hours["call"]
    assert release_time(now, window, "Europe/Amsterdam") == expected


def test_dst_sunday_through_the_engine(engine):
    """On the spring-forward Sunday an SMS decided at 06:30 UTC (08:30 CEST) is held to 07:00 UTC."""
    day = date(2026, 3, 29)
    add_customers(
        engine,
        customer("SPRING", email_valid=False),
        customer("TOKYO", email_valid=False, timezone="Asia/Tokyo"),
    )
    add_candidates(engine, day, ("SPRING", "TRAVEL_INSURANCE"), ("TOKYO", "TRAVEL_INSURANCE"))
    decide_day(engine, day, load_offers(OFFERS_FILE), now=datetime(2026, 3, 29, 6, 30, tzinfo=UTC))
    with session_scope(engine) as session:
        got = {d.customer_id: (d.outcome, as_utc(d.release_at)) for d in session.scalars(select(Decision))}
        held = {m.customer_id: m.not_before for m in session.scalars(select(Message))}
    assert got["SPRING"] == ("held", datetime(2026, 3, 29, 7, 0, tzinfo=UTC))
    assert got["TOKYO"] == ("planned", None)  # 15:30 in Tokyo
    assert held["SPRING"].replace(tzinfo=UTC) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def test_unknown_time_zone_is_rejected_not_guessed(engine):
    add_customers(
        engine,
        customer("MARS", email_valid=False, timezone="Mars/Olympus"),
        customer("MAILS", timezone="Mars/Olympus"),
    )
    add_candidates(engine, DAY, ("MARS", "TRAVEL_INSURANCE"), ("MAILS", "KIDS_SAVINGS"))
    got = outcomes(engine, load_offers(OFFERS_FILE))
    assert got["MARS:TRAVEL_INSURANCE"] == ("invalid_timezone", None)
    assert got["MAILS:KIDS_SAVINGS"] == ("planned", "email")  # email has no quiet hours


def test_holds_product_and_offer_validity(engine):
    add_customers(engine, customer("HOLDS"), customer("NEW"))
    add_holding(engine, "HOLDS", "savings_account")
    add_candidates(engine, DAY, ("HOLDS", "SAVINGS_BOOST"), ("NEW", "SAVINGS_BOOST"))
    data = load_offers(OFFERS_FILE).model_dump()
    for offer in data["offers"]:
        if offer["code"] == "SAVINGS_BOOST":
            offer["valid_until"] = DAY - timedelta(days=1)
    expired = OffersFile.model_validate(data)
    assert outcomes(engine, load_offers(OFFERS_FILE))["HOLDS:SAVINGS_BOOST"][0] == "holds_product"
    assert outcomes(engine, expired)["NEW:SAVINGS_BOOST"][0] == "offer_not_valid"


def test_offer_that_needs_consent_requires_a_topic_opt_in(engine):
    add_customers(engine, customer("YES"), customer("NO"))
    add_consent(engine, "YES", "topic:credit", "opt_in")
    add_candidates(engine, DAY, ("YES", "CREDIT_CARD"), ("NO", "CREDIT_CARD"))
    data = load_offers(OFFERS_FILE).model_dump()
    for offer in data["offers"]:
        if offer["code"] == "CREDIT_CARD":
            offer["legal_basis"] = "consent"
    frame = decide(load_inputs(engine, DAY, OffersFile.model_validate(data), NOON))
    got = {r["customer_id"]: (r["reason"], r["legal_basis"]) for r in frame.iter_rows(named=True)}
    assert got == {"YES": ("planned", "consent"), "NO": ("no_consent", "consent")}


def test_both_readers_give_the_same_frames(engine):
    add_customers(engine, customer("A"), customer("B", timezone="Asia/Tokyo"))
    add_consent(engine, "A", "sms", "opt_out")
    add_suppression(engine, "B", "complaint", date(2026, 1, 1))
    add_holding(engine, "A", "credit_card")
    add_messages(engine, ("A", "KIDS_SAVINGS", "email", DAY - timedelta(days=3), "delivered"))
    add_candidates(engine, DAY, ("A", "KIDS_SAVINGS"), ("B", "CREDIT_CARD"))
    offers = load_offers(OFFERS_FILE)
    fast = load_inputs(engine, DAY, offers, NOON, use_adbc=True)
    plain = load_inputs(engine, DAY, offers, NOON, use_adbc=False)
    for name in ("candidates", "customers", "consent", "suppressions", "holdings", "contacts", "answers"):
        a, b = getattr(fast, name), getattr(plain, name)
        assert a.schema == b.schema, name
        assert a.sort(a.columns).equals(b.sort(b.columns)), name
    assert fast.contacts.height == 1 and fast.suppressions["valid_until"].to_list() == [date(9999, 12, 31)]


def test_consecutive_days_on_storage_keep_caps_and_one_offer_a_day(engine):
    """Decide, send what is due, next day — eight days through the real planner and ledger."""
    import random

    rnd = random.Random(3)
    names = [f"M{i}" for i in range(12)]
    add_customers(engine, *[customer(c, email_valid=rnd.random() < 0.7) for c in names])
    offers = load_offers(OFFERS_FILE)
    codes = [o.code for o in offers.offers]
    first = DAY
    for offset in range(8):
        day = first + timedelta(days=offset)
        now = NOON + timedelta(days=offset)
        picks = {(rnd.choice(names), rnd.choice(codes)) for _ in range(14)}
        add_candidates(engine, day, *[(c, o, round(rnd.random(), 2)) for c, o in sorted(picks)])
        decide_day(engine, day, offers, now=now)
        with session_scope(engine) as session:  # everything due is sent
            due = [
                mid
                for ch in ("sms", "email", "letter", "call")
                for mid in ledger.due_ids(session, day, ch, now)
            ]
            ledger.transition(session, due, "sending")
            ledger.transition(session, due, "sent")
    with session_scope(engine) as session:
        sent = [(m.customer_id, m.offer_code, m.run_date) for m in session.scalars(select(Message))]
    assert sent, "the run planned nothing: the test would prove nothing"
    caps = offers.policy.caps
    for cid in names:
        days = sorted(d for c, _, d in sent if c == cid)
        assert len(days) == len(set(days))  # at most one offer a day
        for end in days:
            assert sum(1 for d in days if 0 <= (end - d).days < 7) <= caps.per_7_days
            assert sum(1 for d in days if 0 <= (end - d).days < 30) <= caps.per_30_days
