"""A customer with data in every table and in every kind of file Outreach writes, beside another one.

Used by tests/test_subjects.py and bench/bench_compliance.py: the real pipeline decides and sends
an email, a letter (with print batches), an SMS and a call; tracking, inbound STOP, a call note, a
campaign assignment, a suppression and payment data are added around it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, select, update

from channels import load_channel
from outreach import consent, ledger
from outreach.calls.models import CallTask
from outreach.calls.tasks import claim_next, create_tasks, record_outcome
from outreach.campaigns.tables import CampaignAssignment
from outreach.config import Settings, load_offers
from outreach.db import session_scope
from outreach.dispatch import Dispatcher
from outreach.models import Candidate, Customer, DeliveryEventRecord, InboundMessage, Message, Transaction
from outreach.planning import decide_day
from outreach.printing import build_print_batches
from tests.calls_support import add_team_and_agents
from tests.factories import add_candidates, add_customers, add_suppression, customer

REPO = Path(__file__).resolve().parent.parent
OFFERS = load_offers(REPO / "tests" / "fixtures" / "offers.yaml")
TARGET = customer(
    "C7",
    first_name="Fenna",
    last_name="Zwartkop",
    email="fenna.zwartkop@example.nl",
    mobile="+31687654321",
    postal_code="9711 AB",
)
OTHER = customer("C8", email="anne.devries@example.nl", mobile="+31611112222", postal_code="1012 JS")
IBAN = "NL91ABNA0417164300"
# working days spaced for the caps (1 per 7 days, 3 per 30 days); the call on a Thursday
EMAIL_DAY, LETTER_DAY, SMS_DAY, CALL_DAY = (
    date(2026, 2, 2),
    date(2026, 2, 10),
    date(2026, 3, 10),
    date(2026, 3, 19),
)


def _noon(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=11)


def _send(engine: Engine, settings: Settings, day: date, channel: str) -> list[int]:
    with session_scope(engine) as session:
        ids = ledger.due_ids(session, day, channel, _noon(day))
    sender = load_channel(channel, "outbox", outbox_dir=settings.outbox_dir)
    Dispatcher(engine, settings, OFFERS, sender, "seed").send_ids(ids)
    return ids


def _day(engine: Engine, settings: Settings, day: date, offer: str, channel: str, **contact) -> None:
    if contact:
        with session_scope(engine) as session:
            session.execute(update(Customer).values(**contact))
    add_candidates(engine, day, ("C7", offer), ("C8", offer))
    decide_day(engine, day, OFFERS, now=_noon(day))
    _send(engine, settings, day, channel)


def seed(engine: Engine, outbox: Path, reports: Path) -> None:
    settings = Settings(database_url=str(engine.url), outbox_dir=outbox, templates_dir=REPO / "templates")
    add_customers(engine, TARGET, OTHER)
    with session_scope(engine) as session:
        session.execute(
            insert(Transaction),
            [
                {
                    "transaction_id": "tx-c7-1",
                    "customer_id": "C7",
                    "booked_at": _noon(EMAIL_DAY) - timedelta(days=3),
                    "amount": 250,
                    "counterparty_name": "SVB",
                    "counterparty_iban": IBAN,
                    "description": "kinderbijslag",
                }
            ],
        )
    add_suppression(engine, "C7", "complaint", date(2025, 1, 1), date(2025, 6, 30))  # expired: no effect
    _day(engine, settings, EMAIL_DAY, "KIDS_SAVINGS", "email")
    _day(engine, settings, LETTER_DAY, "SAVINGS_BOOST", "letter", email_valid=False)
    build_print_batches(outbox, LETTER_DAY, 10)
    _day(engine, settings, SMS_DAY, "TRAVEL_INSURANCE", "sms", email_valid=False)
    _day(engine, settings, CALL_DAY, "INVEST_CALL", "call", email_valid=True)
    _call(engine)
    _events(engine)
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "complaints.html").write_text(
        "<p>Complaint by Fenna Zwartkop (fenna.zwartkop@example.nl, 0687654321) and by Anne de Vries</p>",
        encoding="utf-8",
    )


def _call(engine: Engine) -> None:
    agents = add_team_and_agents(engine, "nl-1", None, 10, ["agent1"])
    create_tasks(engine, CALL_DAY, offers=OFFERS)
    at = _noon(CALL_DAY)
    for _ in range(2):
        task = claim_next(engine, agents["agent1"], now=at)
        with session_scope(engine) as session:
            who = session.get(Customer, session.get(CallTask, task).customer_id)
            note = f"{who.first_name} {who.last_name}: call back"
        record_outcome(engine, task, agents["agent1"], "interested", note=note, now=at)


def _events(engine: Engine) -> None:
    with session_scope(engine) as session:
        email = session.scalar(select(Message).where(Message.customer_id == "C7", Message.channel == "email"))
        sms = session.scalar(select(Message).where(Message.customer_id == "C7", Message.channel == "sms"))
        at = _noon(SMS_DAY) + timedelta(hours=1)
        session.execute(
            insert(DeliveryEventRecord),
            [
                {
                    "message_id": email.id,
                    "channel": "email",
                    "provider": "sendgrid",
                    "provider_event_id": "ev-1",
                    "event_type": "delivered",
                    "description": "250 OK fenna.zwartkop@example.nl",
                    "occurred_at": at,
                    "received_at": at,
                    "raw": {"email": "fenna.zwartkop@example.nl", "event": "delivered"},
                }
            ],
        )
        session.add(
            InboundMessage(
                channel="sms",
                provider="twilio",
                provider_message_id="SM-in-1",
                sender="+31687654321",
                recipient="+3197010000000",
                customer_id="C7",
                message_id=sms.id,
                intent="stop",
                body="STOP",
                received_at=at,
                raw={"From": "+31687654321", "Body": "STOP"},
            )
        )
        consent.record(session, "C7", "sms", "opt_out", "sms:STOP", at=at)
        candidate = session.scalar(select(Candidate.id).where(Candidate.customer_id == "C7"))
        session.add(
            CampaignAssignment(
                campaign="spring",
                candidate_id=candidate,
                customer_id="C7",
                offer_code="KIDS_SAVINGS",
                assigned_on=EMAIL_DAY,
                arm="treatment",
                variant="a",
                channel="email",
                template="kids_savings",
            )
        )
