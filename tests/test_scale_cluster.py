"""Outreach as a real deployment: a Prefect server on PostgreSQL, two process workers, the local
Twilio and SendGrid servers; a day of 20,000 candidates split into shards, a worker killed with
SIGKILL mid-run, PostgreSQL connections cut during dispatch. Select with ``-m integration``.

The provider servers' own records are the proof: every eligible SMS and email exactly once,
nothing lost, and the request times within the shared per-channel rate limits.
"""

from __future__ import annotations

import csv
import os
import time
from datetime import date
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, insert, select

from outreach.db import make_engine, session_scope, upgrade
from outreach.funnel import compute
from outreach.models import ConsentEvent, Customer, Message
from outreach_dev.fakes.sendgrid_server import SendGridServer
from outreach_dev.fakes.twilio_server import TwilioServer
from tests.cluster import REPO, Cluster, create_database, cut_connections, drop_database, window_excess
from tests.conftest import PG_ADMIN_URL, ensure_postgres
from tests.factories import customer
from tests.fixture_files import OFFERS_FILE

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.timeout(420),
]

SMS_LIMIT = (50, 150.0)  # burst, messages per second: the shared per-channel limits
EMAIL_LIMIT = (500, 1000.0)
SID, TOKEN, KEY = "AC" + "1" * 32, "it-auth-token", "SG.it-key"
SENDER = "+3197010000001"
WAIT = 180.0  # the longest any one run may take here
LEASE, SETTLE = 3, 2  # seconds: claims of a dead worker are taken over after LEASE (production: 900)


@pytest.fixture(scope="module")
def providers():
    twilio = TwilioServer(SID, TOKEN).start()
    sendgrid = SendGridServer(KEY).start()
    yield twilio, sendgrid
    twilio.stop()
    sendgrid.stop()


@pytest.fixture(scope="module")
def outreach_url():
    ensure_postgres()
    name = f"outreach_it_{os.getpid()}"
    create_database(PG_ADMIN_URL, name)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    drop_database(PG_ADMIN_URL, name)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, providers, outreach_url):
    twilio, sendgrid = providers
    work = tmp_path_factory.mktemp("cluster")
    offers = yaml.safe_load((OFFERS_FILE).read_text())
    offers["policy"]["quiet_hours"] = {}  # the test runs at any hour; quiet hours are tested elsewhere
    offers["policy"]["capacity"] = {"call": 150, "letter": 500}
    (work / "offers.yaml").write_text(yaml.safe_dump(offers))
    env = {
        "OUTREACH_DATABASE_URL": outreach_url,
        "OUTREACH_OFFERS_FILE": str(work / "offers.yaml"),
        "OUTREACH_TEMPLATES_DIR": str(REPO / "templates"),
        "OUTREACH_OUTBOX_DIR": str(work / "outbox"),
        "OUTREACH_RATE_LIMITS": "true",
        "OUTREACH_UNSUBSCRIBE_SECRET": "scale-test-secret",  # signed one-click links in every mail
        "OUTREACH_SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "OUTREACH_TWILIO_FROM": SENDER,
        "OUTREACH_TWILIO_API_URL": twilio.url,
        "OUTREACH_EMAIL_BACKEND": "sendgrid",
        "SENDGRID_API_KEY": KEY,
        "OUTREACH_EMAIL_FROM": "aanbod@bank.example",
        "OUTREACH_SENDGRID_API_URL": sendgrid.url,
    }
    running = Cluster(work, PG_ADMIN_URL, env, limits={"sms": SMS_LIMIT, "email": EMAIL_LIMIT})
    try:
        running.start_server()
        running.setup(workers={"it-w1": 2, "it-w2": 2})
        yield running
    finally:
        running.close()


# -- a day's data -------------------------------------------------------------------------------


class Day:
    """Customers and a candidates file for one day; ``n`` numbers customers across days."""

    counter = 0

    def __init__(self, engine, folder: Path, day: date, **groups: int) -> None:
        self.day = day
        self.file = folder / f"candidates-{day.isoformat()}.csv"
        bad = groups.pop("bad", 0)  # rows naming an offer that does not exist: rejected at load
        customers, candidates, opted_out = [], [], []
        self.mobiles: set[str] = set()
        offer = {
            "sms": "TRAVEL_INSURANCE",  # sms first
            "email": "KIDS_SAVINGS",  # email first
            "letter": "SAVINGS_BOOST",  # email, letter: these customers have no email
            "call": "INVEST_CALL",
            "opted_out": "KIDS_SAVINGS",
        }
        for group, count in groups.items():
            for _ in range(count):
                Day.counter += 1
                n = Day.counter
                cid = f"IT{n:07d}"
                extra = {"mobile": f"+3162{n:07d}", "email": f"klant{n}@example.nl"}
                if group == "letter":
                    extra.update(email=None, email_valid=False)
                customers.append(customer(cid, **extra))
                self.mobiles.add(extra["mobile"])
                if group == "opted_out":
                    opted_out.append(cid)
                candidates.append((cid, offer[group]))
        rejected = [(cid, "NO_SUCH_OFFER") for cid, _ in candidates[:bad]]
        with session_scope(engine) as session:
            session.execute(insert(Customer), customers)
            if opted_out:
                session.execute(
                    insert(ConsentEvent),
                    [
                        {
                            "customer_id": cid,
                            "scope": "all",
                            "choice": "opt_out",
                            "source": "test",
                            "recorded_at": time_of(day),
                        }
                        for cid in opted_out
                    ],
                )
        with self.file.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["customer_id", "offer_code", "trigger", "trigger_ref", "score", "candidate_date"]
            )
            for n, (cid, code) in enumerate(candidates + rejected):
                writer.writerow([cid, code, "test", f"t{n}", "0.5", day.isoformat()])
        self.rows = len(candidates) + len(rejected)


def time_of(day: date):
    from datetime import UTC, datetime, timedelta

    return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=30)


def messages(engine, day: date) -> list[Message]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Message).where(Message.run_date == day)))


def assert_sent_exactly_once(engine, day: date, providers) -> dict[str, int]:
    """Every SMS and email of the day is ``sent`` in the ledger and at the provider exactly once,
    with the provider's id; the provider got nothing else for the day's customers."""
    twilio, sendgrid = providers
    rows = messages(engine, day)
    sms = [m for m in rows if m.channel == "sms"]
    email = [m for m in rows if m.channel == "email"]
    assert sms and email
    assert {m.status for m in sms + email} == {"sent"}, {m.status for m in sms + email}
    with session_scope(engine) as session:
        mobile = dict(
            session.execute(
                select(Customer.customer_id, Customer.mobile).where(
                    Customer.customer_id.in_([m.customer_id for m in sms])
                )
            ).all()
        )
    sent_to = twilio.sent_to()
    by_sid = {sid: stored.to for sid, stored in twilio.messages.items()}
    for m in sms:
        assert sent_to.get(mobile[m.customer_id]) == 1, (m.customer_id, sent_to.get(mobile[m.customer_id]))
        assert by_sid[m.provider_id] == mobile[m.customer_id]
    accepted = sendgrid.accepted_ids()
    for m in email:
        assert accepted.get(str(m.id)) == 1, (m.id, accepted.get(str(m.id)))
    assert twilio.duplicates() == {} and sendgrid.duplicates() == {}
    day_customers = {m.customer_id for m in rows}
    funnel = compute(engine, day)
    assert funnel.balanced, "every candidate ends in exactly one outcome"
    return {"sms": len(sms), "email": len(email), "customers": len(day_customers)}


def claimed_by_workers(engine, day: date) -> set[str]:
    with session_scope(engine) as session:
        names = session.scalars(
            select(Message.claimed_by).where(Message.run_date == day, Message.channel.in_(("sms", "email")))
        ).all()
    return {name.split("/", 1)[0] for name in names if name}


def provider_count(providers, numbers: set[str], ids: set[str]) -> int:
    twilio, sendgrid = providers
    sms = sum(n for to, n in twilio.sent_to().items() if to in numbers)
    mail = sum(n for key, n in sendgrid.accepted_ids().items() if key in ids)
    return sms + mail


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


# -- the proofs ---------------------------------------------------------------------------------


def test_a_day_of_20000_candidates_on_two_workers_sends_each_message_once_within_the_rate_limits(
    cluster, providers, outreach_url, tmp_path
):
    engine = make_engine(outreach_url)
    twilio, sendgrid = providers
    day = Day(
        engine,
        tmp_path,
        date(2026, 12, 1),
        sms=3000,
        email=15000,
        letter=600,
        call=300,
        opted_out=900,
        bad=200,
    )
    assert day.rows == 20_000
    started = time.time()
    run = cluster.run_deployment("daily-outreach", "daily", run_date=day.day.isoformat(),
                                 candidates_file=str(day.file), shards=3)  # fmt: skip
    state = cluster.wait_run(run, WAIT)
    assert state == "COMPLETED", cluster.flow_run(run)["state"]
    shards = [r for r in cluster.children(run) if r["name"].startswith("dispatch-shard")]
    assert sorted(s["name"] for s in shards) == [f"dispatch-shard-2026-12-01-{i}-of-3" for i in range(3)]
    assert {s["state_type"] for s in shards} == {"COMPLETED"}

    counts = assert_sent_exactly_once(engine, day.day, providers)
    by_offer: dict[tuple[str, str], int] = {}
    for m in messages(engine, day.day):
        by_offer[m.offer_code, m.channel] = by_offer.get((m.offer_code, m.channel), 0) + 1
    assert by_offer["TRAVEL_INSURANCE", "sms"] == 3000 and by_offer["KIDS_SAVINGS", "email"] == 15000
    # (calls over the call centre's capacity may go out as email instead: the policy's choice)
    assert counts["sms"] == 3000 and counts["email"] == 15000 + by_offer.get(("INVEST_CALL", "email"), 0)
    # both workers sent part of the day (a worker's flow runs name it in every claim they make)
    assert claimed_by_workers(engine, day.day) == {"it-w1", "it-w2"}
    with session_scope(engine) as session:
        letters = session.scalar(
            select(func.count()).where(Message.run_date == day.day, Message.channel == "letter")
        )
        assert letters == 500  # the print capacity; the other 100 are recorded as over capacity

    # the shared rate limits held over all shards and both workers (the servers' request times)
    sms_events = [(r.at, 1) for r in twilio.requests if r.method == "POST" and r.created and r.at >= started]
    mail_events = [
        (r.at, len(r.created))
        for r in sendgrid.requests
        if r.method == "POST" and r.created and r.at >= started
    ]
    assert sum(w for _, w in sms_events) == 3000 and sum(w for _, w in mail_events) == counts["email"]
    # every 1 s and 5 s window and the whole span: at most the burst plus the rate over the window
    # and a 2 s slack (slots are taken before a slice's requests leave; a busy 2-core machine can
    # delay them). Unlimited, these 3,000 SMS take well under the ~18 s the whole-span bound needs.
    for events, (burst, rate) in ((sms_events, SMS_LIMIT), (mail_events, EMAIL_LIMIT)):
        span = max(t for t, _ in events) - min(t for t, _ in events) + 1e-3
        for window in (1.0, 5.0, span):
            count, allowed, _ = window_excess(events, burst, rate, window, slack=2.0)
            assert count <= allowed, (window, count, allowed)
    engine.dispose()


def _holders(engine, day: date) -> dict[str, int]:
    """Workers holding claims on the day's messages right now (status ``sending``), and how many."""
    with session_scope(engine) as session:
        holders = session.scalars(
            select(Message.claimed_by).where(Message.run_date == day, Message.status == "sending")
        ).all()
    counts: dict[str, int] = {}
    for holder in holders:
        name = holder.split("/", 1)[0]
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_a_worker_killed_mid_run_loses_nothing_and_a_rerun_sends_no_duplicate(
    cluster, providers, outreach_url, tmp_path
):
    engine = make_engine(outreach_url)
    day = Day(engine, tmp_path, date(2026, 12, 2), sms=1500, email=1500)
    run = cluster.run_deployment("daily-outreach", "daily", run_date=day.day.isoformat(),
                                 candidates_file=str(day.file), shards=2)  # fmt: skip
    wait_until(lambda: provider_count(providers, day.mobiles, set()) >= 300, WAIT, "SMS dispatch under way")

    victim: list[str] = []

    def killed_while_holding_claims() -> bool:
        # freeze a worker that holds claims, look again, and kill it only if it still does: it
        # then dies with messages claimed, maybe sent, not recorded — the case the lease is for
        for name in _holders(engine, day.day):
            worker = cluster.workers[name]
            worker.freeze()
            if _holders(engine, day.day).get(name):
                worker.kill()  # SIGKILL to the worker and the flow runs it started
                victim.append(name)
                return True
            worker.thaw()
        return False

    wait_until(killed_while_holding_claims, 60, "a worker holding claims")
    in_doubt = _holders(engine, day.day)[victim[0]]  # the dead worker's claims: fixed from now on
    cluster.start_worker("it-w3", limit=2)
    cluster.wait_workers_online(["it-w3"])
    # the dead worker's runs never report an end: crash them as the heartbeat automation would
    wait_until(lambda: cluster.crash_orphans("killed worker (test)") is not None and _settled(cluster), 120,
               "the surviving runs to finish")  # fmt: skip
    assert cluster.state(run) in {"FAILED", "CRASHED"}, "the day did not complete on its own"
    assert _holders(engine, day.day) == {victim[0]: in_doubt}  # the survivors finished theirs

    time.sleep(LEASE)  # the dead worker's claims are now older than the lease
    rerun = cluster.run_deployment("daily-outreach", "daily", run_date=day.day.isoformat(),
                                   candidates_file=str(day.file), shards=2,
                                   lease_seconds=LEASE, settle_seconds=SETTLE)  # fmt: skip
    assert cluster.wait_run(rerun, WAIT) == "COMPLETED"
    counts = assert_sent_exactly_once(engine, day.day, providers)
    assert counts == {"sms": 1500, "email": 1500, "customers": 3000}
    engine.dispose()


def _settled(cluster) -> bool:
    return not cluster.flow_runs(state={"type": {"any_": ["PENDING", "RUNNING"]}})


def test_postgresql_connections_cut_during_dispatch_then_a_rerun_completes_without_duplicates(
    cluster, providers, outreach_url, tmp_path
):
    engine = make_engine(outreach_url)
    database = outreach_url.rsplit("/", 1)[1]
    day = Day(engine, tmp_path, date(2026, 12, 3), sms=1000, email=2000)
    numbers = day.mobiles
    run = cluster.run_deployment("daily-outreach", "daily", run_date=day.day.isoformat(),
                                 candidates_file=str(day.file), shards=2)  # fmt: skip
    wait_until(
        lambda: provider_count(providers, numbers, set()) >= 250,
        WAIT,
        "dispatch to be under way",
    )
    cut = 0
    for _ in range(3):
        cut += cut_connections(PG_ADMIN_URL, database)
        time.sleep(0.7)
    assert cut > 0, "there were connections to cut"
    first = cluster.wait_run(run, WAIT)
    assert first in {"COMPLETED", "FAILED"}, first  # fails or completes, never hangs or crashes
    wait_until(lambda: _settled(cluster), 120, "every run to finish")

    time.sleep(LEASE)
    # the shard count is the run's choice: this rerun sends what is left from the daily run itself
    rerun = cluster.run_deployment("daily-outreach", "daily", run_date=day.day.isoformat(),
                                   candidates_file=str(day.file), shards=1,
                                   lease_seconds=LEASE, settle_seconds=SETTLE)  # fmt: skip
    assert cluster.wait_run(rerun, WAIT) == "COMPLETED"
    counts = assert_sent_exactly_once(engine, day.day, providers)
    assert counts == {"sms": 1000, "email": 2000, "customers": 3000}
    engine.dispose()


def test_enabled_rate_limits_that_do_not_exist_are_a_clear_error_not_a_silent_pass(cluster):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.limits import PrefectRateLimits, RateLimitMissing

    with temporary_settings({PREFECT_API_URL: cluster.api}):
        assert PrefectRateLimits("outreach-").check() == {"sms": SMS_LIMIT, "email": EMAIL_LIMIT}
        with pytest.raises(RateLimitMissing) as missing:
            PrefectRateLimits("nowhere-").check()
        cluster.create_limit("nodecay-sms", 10, 0.0)
        with pytest.raises(RateLimitMissing) as no_decay:
            PrefectRateLimits("nodecay-", channels=("sms",)).check()
    text = str(missing.value)
    assert "'nowhere-sms' does not exist: prefect gcl create nowhere-sms --limit" in text
    assert "'nowhere-email' does not exist" in text and "OUTREACH_RATE_LIMITS" in text
    assert "'nodecay-sms' has no slot decay" in str(no_decay.value)
