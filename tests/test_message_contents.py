"""The rendered content of each message: stored before the hand-off, equal to what the channel got,
replaced on a resend, shown by `explain` and `message show`, purged after the retention period."""

# ruff: noqa: F811 - the fixtures imported from tests.provider_fakes are parameters here
from __future__ import annotations

import csv
import email
import json
import logging
import re
from datetime import UTC, date, datetime, time, timedelta
from email import policy
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select, update
from typer.testing import CliRunner

from channels import load_channel
from outreach import contents, ledger
from outreach.cli import app
from outreach.config import Settings, get_settings, load_offers
from outreach.db import session_scope
from outreach.dispatch import Dispatcher
from outreach.models import Customer, Message, MessageContent
from outreach.planning import decide_day
from outreach.sending import reconcile_in_doubt, send_due
from tests.dispatch_worker import channel_for
from tests.factories import add_candidates, add_customers, customer
from tests.fixture_files import OFFERS_FILE
from tests.provider_fakes import twilio_server  # noqa: F401 - fixture

REPO = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 18)
NOON = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)
OFFERS = load_offers(OFFERS_FILE)


def plan(engine, day: date, *people: tuple[dict, str]) -> None:
    add_customers(engine, *[row for row, _ in people])
    add_candidates(engine, day, *[(row["customer_id"], offer) for row, offer in people])
    decide_day(engine, day, OFFERS, now=datetime.combine(day, time(11), UTC))


def send(engine, tmp_path, kind: str, day: date = DAY, channel=None):
    settings = Settings(database_url=str(engine.url), outbox_dir=tmp_path / "outbox")
    channel = channel or load_channel(kind, "outbox", outbox_dir=settings.outbox_dir)
    with session_scope(engine) as session:
        ids = ledger.due_ids(session, day, kind, datetime.combine(day, time(11), UTC))
    return Dispatcher(engine, settings, OFFERS, channel, "w1").send_ids(ids)


def stored(engine) -> dict[str, MessageContent]:
    """Content rows by customer id."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Message.customer_id, MessageContent).join(Message, Message.id == MessageContent.message_id)
        ).all()
    return {cid: content for cid, content in rows}


def status_of(engine, customer_id: str) -> Message:
    with session_scope(engine) as session:
        return session.scalars(select(Message).where(Message.customer_id == customer_id)).one()


def test_each_channel_stores_exactly_what_it_handed_over(engine, tmp_path):
    plan(
        engine,
        DAY,
        (customer("E1", language="de", first_name="Zoë"), "KIDS_SAVINGS"),  # no German: falls back to nl
        (customer("S1", first_name="Daan"), "TRAVEL_INSURANCE"),
        (customer("L1", email_valid=False, mobile_valid=False, first_name="Łukasz"), "KIDS_SAVINGS"),
        (customer("K1", first_name="Siobhán", language="en"), "INVEST_CALL"),
    )
    for kind in ("email", "sms", "letter", "call"):
        report = send(engine, tmp_path, kind)
        assert (report.claimed, report.sent, report.failed) == (1, 1, 0), kind
    rows = stored(engine)
    assert {cid: c.channel for cid, c in rows.items()} == {
        "E1": "email",
        "S1": "sms",
        "L1": "letter",
        "K1": "call",
    }
    out = tmp_path / "outbox" / DAY.isoformat()
    ids = {cid: str(c.message_id) for cid, c in rows.items()}

    mail = email.message_from_bytes((out / "email" / f"{ids['E1']}.eml").read_bytes(), policy=policy.default)
    e1 = rows["E1"]
    assert e1.subject == mail["Subject"] and "Zoë" in e1.body
    assert e1.body == mail.get_body(("plain",)).get_content().rstrip("\n")
    assert e1.html == mail.get_body(("html",)).get_content().rstrip("\n")
    assert (e1.language, e1.template) == ("nl", "kids_savings")
    assert e1.language_note == "language de missing for email/kids_savings, fell back to nl"

    sms = json.loads((out / "sms" / f"{ids['S1']}.json").read_text(encoding="utf-8"))
    assert rows["S1"].body == sms["body"] and "Daan" in sms["body"]
    assert rows["S1"].subject is None and rows["S1"].html is None and rows["S1"].language_note is None

    with (out / "call" / "call-list.csv").open(encoding="utf-8") as handle:
        script = next(csv.DictReader(handle))["script"]
    assert rows["K1"].body == script and "Siobhán" in script and rows["K1"].language == "en"

    letter = rows["L1"]
    pdf = " ".join(page.extract_text() for page in PdfReader(out / "letter" / f"{ids['L1']}.pdf").pages)
    words = re.findall(r"\w+", pdf)
    assert letter.subject and " ".join(re.findall(r"\w+", letter.subject)) in " ".join(words)
    assert set(re.findall(r"\w+", letter.body)) <= set(words) and "Łukasz" in letter.body

    for c in rows.values():  # digest of the sources, hash of the parts, both as documented
        assert re.fullmatch(r"[0-9a-f]{16}", c.template_digest)
        assert c.content_sha256 == contents.content_sha256(c.subject, c.body, c.html)
    # a template change shows in the digest: the same template, other sources, another digest
    assert len({rows[k].template_digest for k in rows}) == 4


def test_a_render_failure_stores_no_content_and_drops_an_earlier_attempts(engine, tmp_path):
    plan(engine, DAY, (customer("C1"), "KIDS_SAVINGS"), (customer("C2"), "KIDS_SAVINGS"))
    with session_scope(engine) as session:  # an empty first name: the strict template refuses
        session.execute(update(Customer).where(Customer.customer_id == "C2").values(first_name=""))
    report = send(engine, tmp_path, "email")
    assert (report.sent, report.failed) == (1, 1)
    assert set(stored(engine)) == {"C1"}
    assert (
        status_of(engine, "C2").status == "failed" and status_of(engine, "C2").last_error_code == "template"
    )

    # C1 goes back to planned (reconciled: the provider never got it) and now fails to render
    mid = status_of(engine, "C1").id
    with session_scope(engine) as session:
        session.execute(update(Message).where(Message.id == mid).values(status="unknown"))
        ledger.transition(session, [mid], "planned", expected="unknown", detail="reconciled")
        session.execute(update(Customer).where(Customer.customer_id == "C1").values(first_name=""))
    assert send(engine, tmp_path, "email").failed == 1
    assert stored(engine) == {}


def test_content_is_on_record_before_the_send_and_a_resend_replaces_it(engine, twilio_server, caplog):
    """Through the real Twilio SDK: the request is lost, so the content of the first attempt is all
    there is; reconciliation finds nothing at Twilio, the message is sent again with new content.
    None of it reaches a log record, even at DEBUG (the SDK's request log included)."""
    caplog.set_level(logging.DEBUG)
    plan(engine, DAY, (customer("C1", mobile="+31612000001", first_name="Anne"), "TRAVEL_INSURANCE"))
    twilio_server.set_faults(script=["drop"])
    channel = channel_for("sms", twilio_server.url)
    channel.concurrency = 1
    settings = Settings(database_url=str(engine.url))
    dispatcher = Dispatcher(engine, settings, OFFERS, channel, "w1")
    first = dispatcher.send_ids([status_of(engine, "C1").id])
    assert first.unknown == 1 and twilio_server.messages == {}
    before = stored(engine)["C1"]
    assert "Anne" in before.body

    with session_scope(engine) as session:  # the customer's name was corrected in the meantime
        session.execute(update(Customer).where(Customer.customer_id == "C1").values(first_name="Anna"))
    assert reconcile_in_doubt(dispatcher, DAY, settle=timedelta(0)).requeued == 1
    send_due(dispatcher, DAY, settle=timedelta(0))
    channel.close()

    assert status_of(engine, "C1").status == "sent"
    [received] = twilio_server.messages.values()
    after = stored(engine)["C1"]
    assert after.body == received.body and "Anna" in after.body and "Anne" not in after.body
    assert after.content_sha256 != before.content_sha256 and after.rendered_at >= before.rendered_at
    with session_scope(engine) as session:
        assert (
            session.scalar(select(MessageContent.message_id).where(MessageContent.body.like("%Anne%")))
            is None
        )
    assert caplog.records and not [r for r in caplog.records if "Ann" in r.getMessage()]
    assert after.body not in caplog.text and before.body not in caplog.text


@pytest.fixture
def cli(engine, monkeypatch, tmp_path):
    monkeypatch.setenv("OUTREACH_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("OUTREACH_OFFERS_FILE", str(OFFERS_FILE))
    monkeypatch.setenv("OUTREACH_TEMPLATES_DIR", str(REPO / "templates"))
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        return result.output

    yield run
    get_settings.cache_clear()


def test_explain_and_message_show_print_what_was_sent(engine, tmp_path, cli):
    plan(
        engine,
        DAY,
        (customer("C1", first_name="Zoë"), "KIDS_SAVINGS"),
        (customer("C2", first_name="[bold]Piet[/bold]"), "TRAVEL_INSURANCE"),  # brackets stay text
    )
    send(engine, tmp_path, "email")
    c1 = stored(engine)["C1"]
    first_line = c1.body.splitlines()[0]

    text = cli("explain", "C1", "--date", DAY.isoformat())
    assert f"Subject: {c1.subject}" in text and f"| {first_line}" in text and "Zoë" in text
    assert f"template digest {c1.template_digest}" in text
    assert f"HTML: {len(c1.html.encode()):,} bytes" in text and "<html" not in text.lower()
    data = json.loads(cli("explain", "C1", "--date", DAY.isoformat(), "--format", "json"))
    shown = data["messages"][0]["content"]
    assert (shown["subject"], shown["body"], shown["html_bytes"]) == (
        c1.subject,
        c1.body,
        len(c1.html.encode()),
    )

    send(engine, tmp_path, "sms")
    piet = cli("explain", "C2", "--date", DAY.isoformat())
    assert "[bold]Piet[/bold]" in piet and stored(engine)["C2"].body.splitlines()[0] in piet

    mid = str(c1.message_id)
    show = cli("message", "show", mid)
    assert f"Subject: {c1.subject}" in show and first_line in show and "HTML source" not in show
    assert c1.html in cli("message", "show", mid, "--html")
    assert json.loads(cli("message", "show", mid, "--format", "json"))["content"]["body"] == c1.body
    assert "no message 999999" in cli("message", "show", "999999", code=1)


def test_purge_deletes_only_the_content_of_old_messages(engine, tmp_path, cli):
    today = datetime.now(UTC).date()
    old, recent = today - timedelta(days=30), today - timedelta(days=5)
    for day, who in ((old, "OLD"), (recent, "NEW")):
        plan(engine, day, (customer(who), "KIDS_SAVINGS"))
        assert send(engine, tmp_path, "email", day).sent == 1
    assert set(stored(engine)) == {"OLD", "NEW"}
    assert "deleted the content of 0 messages" in cli("message", "purge-content")  # default: 400 days
    out = cli("message", "purge-content", "--older-than", "10")
    assert f"deleted the content of 1 messages planned before {today - timedelta(days=10)}" in out
    assert set(stored(engine)) == {"NEW"}
    assert status_of(engine, "OLD").status == "sent"  # the ledger keeps the message itself
    assert "No stored content" in cli("explain", "OLD", "--date", old.isoformat())
    assert contents.purge(engine, 1, today=today) == 1 and stored(engine) == {}
