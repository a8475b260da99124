"""Campaigns through the real engine and storage (SQLite and PostgreSQL): audience, the campaign rules
after the engine (never loosening it), budgets, control group, send times, pause before a batch."""

from __future__ import annotations

import dataclasses
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from channels import load_channel
from outreach import ledger
from outreach.campaigns import state
from outreach.campaigns.daily import load_campaign_candidates
from outreach.campaigns.seam import CAMPAIGN_REASONS
from outreach.campaigns.tables import CampaignAssignment, CampaignEvent
from outreach.config import Settings, load_offers
from outreach.db import as_utc, session_scope
from outreach.dispatch import Dispatcher
from outreach.funnel import compute
from outreach.models import Candidate, Decision, Holding, Message
from outreach.planning import decide_day
from outreach.policy import REASONS
from tests.factories import add_candidates, add_consent, add_customers, customer
from tests.fixture_files import OFFERS_FILE

REPO = Path(__file__).resolve().parent.parent
OFFERS = load_offers(OFFERS_FILE)
DAY = date(2026, 11, 18)  # a Wednesday
EARLY = datetime(2026, 11, 18, 6, 0, tzinfo=UTC)  # 07:00 in Amsterdam: before the send times
NOON = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)
AB_VARIANTS = "[{name: A, percent: 50}, {name: B, percent: 50, templates: {email: savings_boost_rate}}]"


def campaign_yaml(name: str, **fields: str) -> str:
    base = {
        "owner": "marketing@bank.example",
        "offers": "[SAVINGS_BOOST]",
        "window": "{start: 2026-11-01, end: 2026-11-30}",
        "audience": "{holds: [current_account], not_holds: [savings_account]}",
        "holdout_percent": "0",
    }
    base.update(fields)
    return f"name: {name}\n" + "".join(f"{key}: {value}\n" for key, value in base.items())


@pytest.fixture
def world(engine, tmp_path):
    """A campaigns folder and a function that loads today's campaign candidates and decides the day."""
    folder = tmp_path / "campaigns"
    folder.mkdir()
    settings = Settings(
        database_url=str(engine.url),
        offers_file=OFFERS_FILE,
        templates_dir=REPO / "templates",
        campaigns_dir=folder,
        outbox_dir=tmp_path / "outbox",
    )

    class World:
        def write(self, name: str, text: str) -> None:
            (folder / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")

        def run(self, day: date = DAY, now: datetime = NOON) -> dict:
            loaded = load_campaign_candidates(engine, settings, day)
            decide_day(engine, day, OFFERS, now=now)
            return loaded

    w = World()
    w.settings = settings
    return w


def bank(engine, n: int, **overrides) -> list[str]:
    ids = [f"C{i:05d}" for i in range(n)]
    add_customers(engine, *[customer(cid, **overrides) for cid in ids])
    with session_scope(engine) as session:
        session.execute(insert(Holding), [{"customer_id": cid, "product": "current_account"} for cid in ids])
    return ids


def decisions(engine, day: date = DAY) -> dict[str, Decision]:
    with session_scope(engine) as session:
        return {
            d.customer_id: d for d in session.scalars(select(Decision).where(Decision.decision_date == day))
        }


def entries(engine, name: str) -> dict[str, CampaignAssignment]:
    with session_scope(engine) as session:
        return {
            a.customer_id: a
            for a in session.scalars(select(CampaignAssignment).where(CampaignAssignment.campaign == name))
        }


def test_every_campaign_reason_is_described():
    assert set(CAMPAIGN_REASONS) <= set(REASONS)


def test_audience_filter_runs_in_the_database(engine, world):
    add_customers(
        engine,
        customer("YOUNG", birth_date=date(2005, 1, 1)),  # 21
        customer("AMS", birth_date=date(1980, 1, 1), postal_code="1017 AB", city="Amsterdam"),
        customer("AMS_OLD", birth_date=date(1940, 1, 1), postal_code="1017 AB", city="Amsterdam"),
        customer("UTR", birth_date=date(1980, 1, 1), postal_code="3511 AB", city="Utrecht"),
        customer("AMS_SAVER", birth_date=date(1980, 1, 1), postal_code="1100 ZZ", city="Amsterdam-Zuidoost"),
        customer("AMS_NOACCOUNT", birth_date=date(1980, 1, 1), postal_code="1011 AA", city="Amsterdam"),
        customer("AMS_LATE_SAVER", birth_date=date(1980, 1, 1), postal_code="1011 AA", city="Amsterdam"),
    )
    with session_scope(engine) as session:
        session.execute(
            insert(Holding),
            [
                {"customer_id": c, "product": "current_account"}
                for c in ("YOUNG", "AMS", "AMS_OLD", "UTR", "AMS_SAVER", "AMS_LATE_SAVER")
            ]
            + [
                {"customer_id": "AMS_SAVER", "product": "savings_account", "opened_at": date(2020, 1, 1)},
                # opened after the run date: not held on the day, so still in the audience
                {
                    "customer_id": "AMS_LATE_SAVER",
                    "product": "savings_account",
                    "opened_at": date(2026, 11, 25),
                },
            ],
        )
    world.write(
        "amsterdam",
        campaign_yaml(
            "amsterdam",
            audience="{age: {min: 25, max: 67}, postcode_prefixes: ['10', '11'], "
            "holds: [current_account], not_holds: [savings_account]}",
        ),
    )
    loaded = world.run()
    assert loaded["running"] == ["amsterdam"] and loaded["loaded"] == 2
    with session_scope(engine) as session:
        rows = session.execute(select(Candidate.customer_id, Candidate.trigger, Candidate.trigger_ref)).all()
    assert sorted(rows) == [("AMS", "campaign", "amsterdam"), ("AMS_LATE_SAVER", "campaign", "amsterdam")]
    world.write("city", campaign_yaml("city", audience="{cities: [utrecht]}"))
    assert world.run()["loaded"] == 2  # matched case-insensitively
    with session_scope(engine) as session:
        utrecht = session.scalars(select(Candidate.customer_id).where(Candidate.trigger_ref == "city")).all()
    assert sorted(utrecht) == ["UTR", "YOUNG"]  # no age band in this campaign


def test_a_preview_applies_the_rules_and_writes_nothing(engine, world):
    from outreach.campaigns import seam
    from outreach.policy import decide, load_inputs

    bank(engine, 30)
    world.write("preview", campaign_yaml("preview", holdout_percent="30"))
    load_campaign_candidates(engine, world.settings, DAY)
    inputs = load_inputs(engine, DAY, OFFERS, NOON)
    previewed = seam.apply(engine, decide(inputs), inputs, record=False)
    assert entries(engine, "preview") == {}
    world.run()
    stored = {d.candidate_id: (d.outcome, d.reason, d.channel, d.detail) for d in decisions(engine).values()}
    assert {
        r["candidate_id"]: (r["outcome"], r["reason"], r["channel"], r["detail"])
        for r in previewed.to_dicts()
    } == stored
    assert "control_group" in {v[1] for v in stored.values()}
    with pytest.raises(ValueError, match="trigger column"):
        seam.apply(
            engine, decide(inputs), dataclasses.replace(inputs, candidates=inputs.candidates.drop("trigger"))
        )


def test_campaign_rules_never_loosen_the_engine(engine, world):
    ids = bank(engine, 6)
    add_consent(engine, ids[0], "all")  # opted out of everything
    add_consent(engine, ids[1], "email")  # no email: the campaign allows email only
    add_candidates(engine, DAY, (ids[2], "KIDS_SAVINGS", 0.9))  # a better-ranked offer the same day
    world.write("only-email", campaign_yaml("only-email", channels="[email]", priority="50"))
    world.run()
    got = decisions(engine)
    assert (got[ids[0]].outcome, got[ids[0]].reason) == ("suppressed", "opted_out_global")
    # the engine would have sent a letter; the campaign's narrowing re-decides with email only
    assert (got[ids[1]].outcome, got[ids[1]].reason, got[ids[1]].channel) == (
        "suppressed",
        "opted_out_channel",
        None,
    )
    with session_scope(engine) as session:
        by_offer = {
            (d.customer_id, d.offer_code): d.reason
            for d in session.scalars(select(Decision).where(Decision.customer_id == ids[2]))
        }
    assert by_offer == {(ids[2], "KIDS_SAVINGS"): "planned", (ids[2], "SAVINGS_BOOST"): "lost_arbitration"}
    for cid in ids[3:]:
        assert (got[cid].outcome, got[cid].channel) == ("planned", "email")
        assert got[cid].detail == "campaign=only-email;arm=treatment;variant=A"
    assert set(entries(engine, "only-email")) == set(ids[3:])  # only the eligible enter
    funnel = compute(engine, DAY)
    assert funnel.balanced and funnel.planned == 4


def test_narrowed_channel_order_and_capacity_stay_global(engine, world):
    bank(engine, 8)
    add_customers(engine, customer("PAPER", email_valid=False, mobile_valid=False))
    add_candidates(engine, DAY, ("PAPER", "KIDS_SAVINGS", 0.9))  # takes a letter outside the campaign
    world.write("letters-first", campaign_yaml("letters-first", channels="[letter, email]"))
    capped = OFFERS.model_copy(
        update={"policy": OFFERS.policy.model_copy(update={"capacity": {"letter": 3}})}
    )
    load_campaign_candidates(engine, world.settings, DAY)
    decide_day(engine, DAY, capped, now=NOON)
    got = decisions(engine)
    assert (got.pop("PAPER").channel, len(got)) == ("letter", 8)
    planned = [d.channel for d in got.values() if d.outcome == "planned"]
    # the campaign's order (letter before the offer's email), within what is left of the day's capacity;
    # the rest is what the engine does with capacity (over_capacity, or another channel if it falls back)
    assert planned.count("letter") == 2
    assert all(d.reason in ("planned", "over_capacity") for d in got.values())
    assert all(d.channel in ("email", None) for d in got.values() if d.channel != "letter")


def test_control_group_gets_a_decision_and_no_message(engine, world):
    ids = bank(engine, 400)
    world.write("with-control", campaign_yaml("with-control", holdout_percent="25"))
    world.run()
    got = decisions(engine)
    control = {cid for cid, d in got.items() if d.reason == "control_group"}
    assert 60 <= len(control) <= 140  # 25% of 400, within sampling error
    for cid in control:
        assert (got[cid].outcome, got[cid].channel) == ("suppressed", None)
        assert got[cid].detail == "campaign=with-control;arm=control"
    with session_scope(engine) as session:
        messaged = set(session.scalars(select(Message.customer_id)))
    assert messaged == set(ids) - control
    assigned = entries(engine, "with-control")
    assert {cid for cid, a in assigned.items() if a.arm == "control"} == control
    assert all(assigned[cid].channel == "email" for cid in control)  # the channel it would have had
    funnel = compute(engine, DAY)
    assert funnel.balanced and funnel.eligible == 400


def test_assignment_is_the_same_on_a_rerun_from_scratch(engine, world, tmp_path, migrated_sqlite):
    """Arms and variants come from a hash: a second database with the same bank picks the same people."""
    from outreach.db import make_engine

    text = campaign_yaml("ab", holdout_percent="20", variants=AB_VARIANTS)
    results = []
    for target in (engine, None):
        if target is None:
            url = migrated_sqlite(tmp_path / "second.db")
            target = make_engine(url)
            world.settings = world.settings.model_copy(update={"database_url": url})
        bank(target, 300)
        world.write("ab", text)
        load_campaign_candidates(target, world.settings, DAY)
        decide_day(target, DAY, OFFERS, now=NOON)
        results.append({cid: (a.arm, a.variant, a.template) for cid, a in entries(target, "ab").items()})
    assert results[0] == results[1] and len(results[0]) == 300
    assert {t for _, v, t in results[0].values() if v == "B"} == {"savings_boost_rate"}


def test_budgets_daily_and_total_and_once_per_customer(engine, world):
    bank(engine, 50)
    world.write("budget", campaign_yaml("budget", holdout_percent="10", budget="{daily: 15, total: 25}"))
    world.run()
    got = decisions(engine)
    treated = [d for d in got.values() if d.outcome == "planned"]
    control = [d for d in got.values() if d.reason == "control_group"]
    over = [d for d in got.values() if d.reason == "campaign_budget"]
    assert len(treated) == 15 and len(treated) + len(control) + len(over) == 50
    assert state.budget_used(engine, ["budget"], DAY) == {"budget": (15, 15)}

    day2 = date(2026, 11, 19)
    loaded = world.run(day2, datetime(2026, 11, 19, 11, 0, tzinfo=UTC))
    entered_day1 = len(treated) + len(control)
    assert loaded["loaded"] == 50 - entered_day1  # whoever entered does not come back
    second = decisions(engine, day2)
    assert sum(d.outcome == "planned" for d in second.values()) == 10  # the total budget's remainder
    assert state.budget_used(engine, ["budget"], day2) == {"budget": (10, 25)}

    day3 = date(2026, 11, 20)
    assert world.run(day3, datetime(2026, 11, 20, 11, 0, tzinfo=UTC)).get("loaded", 0) == 0  # spent


def test_a_customer_already_in_the_campaign_does_not_enter_twice(engine, world):
    (cid,) = bank(engine, 1)
    world.write("once", campaign_yaml("once"))
    world.run()
    # a second candidate for the same campaign on a later day, e.g. from a file drop
    day2 = date(2026, 11, 19)
    with session_scope(engine) as session:
        session.execute(
            insert(Candidate),
            [
                {
                    "candidate_date": day2,
                    "customer_id": cid,
                    "offer_code": "SAVINGS_BOOST",
                    "trigger": "campaign",
                    "trigger_ref": "once",
                    "score": 0.5,
                    "source": "test",
                }
            ],
        )
    # the policy counts yesterday's message against the caps even before it is sent (it reserves
    # its place): relax caps and cooldown so that the campaign's own once-per-customer rule decides
    from outreach.config import Caps

    relaxed = OFFERS.model_copy(
        update={"policy": OFFERS.policy.model_copy(update={"caps": Caps(per_7_days=5), "cooldown_days": 0})}
    )
    decide_day(engine, day2, relaxed, now=datetime(2026, 11, 19, 11, 0, tzinfo=UTC))
    assert decisions(engine, day2)[cid].reason == "campaign_already_assigned"  # yesterday's is not sent yet
    assert len(entries(engine, "once")) == 1


def test_send_time_holds_until_then_in_the_customer_zone(engine, world):
    add_customers(
        engine,
        customer("NL", email_valid=False),  # gets an SMS
        customer("NY", email_valid=False, timezone="America/New_York"),
        customer("MAIL", mobile_valid=False),
    )
    with session_scope(engine) as session:
        session.execute(
            insert(Holding), [{"customer_id": c, "product": "current_account"} for c in ("NL", "NY", "MAIL")]
        )
    world.write(
        "timed",
        campaign_yaml(
            "timed",
            offers="[TRAVEL_INSURANCE]",
            audience="{holds: [current_account]}",
            channels="[sms, email]",
            send_times='{sms: "12:30", email: "08:30"}',
        ),
    )
    world.run(now=EARLY)  # 07:00 in Amsterdam, 01:00 in New York
    got = decisions(engine)
    assert (got["NL"].outcome, got["NL"].reason, got["NL"].channel) == ("held", "campaign_send_time", "sms")
    assert as_utc(got["NL"].release_at) == datetime(2026, 11, 18, 11, 30, tzinfo=UTC)
    assert got["NL"].detail.startswith("campaign=timed")
    assert as_utc(got["NY"].release_at) == datetime(2026, 11, 18, 17, 30, tzinfo=UTC)  # 12:30 in New York
    assert as_utc(got["MAIL"].release_at) == datetime(2026, 11, 18, 7, 30, tzinfo=UTC)  # email at 08:30
    with session_scope(engine) as session:
        due_early = ledger.due_ids(session, DAY, "sms", datetime(2026, 11, 18, 11, 0, tzinfo=UTC))
        due_later = ledger.due_ids(session, DAY, "sms", datetime(2026, 11, 18, 11, 30, tzinfo=UTC))
    assert len(due_early) == 0 and len(due_later) == 1


def test_after_the_send_window_a_message_waits_for_the_next_day_never_quiet_hours(engine, world):
    add_customers(engine, customer("NL", email_valid=False))
    with session_scope(engine) as session:
        session.execute(insert(Holding), [{"customer_id": "NL", "product": "current_account"}])
    world.write(
        "timed",
        campaign_yaml(
            "timed",
            offers="[TRAVEL_INSURANCE]",
            audience="{holds: [current_account]}",
            send_times='{sms: "12:30"}',
        ),
    )
    world.run(now=datetime(2026, 11, 18, 21, 0, tzinfo=UTC))  # 22:00: SMS quiet hours
    assert as_utc(decisions(engine)["NL"].release_at) == datetime(2026, 11, 19, 11, 30, tzinfo=UTC)


def test_pause_stops_the_next_batch_and_resume_releases_it(engine, world, tmp_path):
    bank(engine, 10)
    world.write("pausable", campaign_yaml("pausable"))
    world.run()
    dispatcher = Dispatcher(
        engine,
        world.settings,
        OFFERS,
        load_channel("email", "outbox", outbox_dir=world.settings.outbox_dir),
        "w1",
    )
    with session_scope(engine) as session:
        ids = ledger.due_ids(session, DAY, "email", NOON)
    first, second = ids[:4], ids[4:]
    assert dispatcher.send_ids(first).sent == 4
    assert state.set_paused(engine, "pausable", True)
    held = dispatcher.send_ids(second)
    assert (held.claimed, held.sent, held.held_paused) == (0, 0, 6)
    with session_scope(engine) as session:
        statuses = dict(session.execute(select(Message.id, Message.status)).all())
        events = session.execute(select(CampaignEvent.kind, CampaignEvent.count)).all()
    assert [statuses[i] for i in second] == ["planned"] * 6
    assert ("paused", 0) in events and ("held_back", 6) in events
    assert not state.set_paused(engine, "pausable", True)  # already paused
    assert state.set_paused(engine, "pausable", False)
    resumed = dispatcher.send_ids(second)
    assert (resumed.claimed, resumed.sent, resumed.held_paused) == (6, 6, 0)
    assert len(list((world.settings.outbox_dir / DAY.isoformat() / "email").glob("*.eml"))) == 10


def test_a_campaign_paused_before_deciding_holds_its_messages(engine, world):
    bank(engine, 3)
    world.write("early-pause", campaign_yaml("early-pause"))
    load_campaign_candidates(engine, world.settings, DAY)
    state.set_paused(engine, "early-pause", True)
    decide_day(engine, DAY, OFFERS, now=NOON)
    got = decisions(engine)
    assert {(d.outcome, d.reason) for d in got.values()} == {("held", "campaign_paused")}
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 3  # planned, waiting for resume


def test_variant_template_is_used_when_sending(engine, world):
    bank(engine, 40)
    world.write(
        "subjects",
        campaign_yaml(
            "subjects",
            variants=AB_VARIANTS,
        ),
    )
    world.run()
    dispatcher = Dispatcher(
        engine,
        world.settings,
        OFFERS,
        load_channel("email", "outbox", outbox_dir=world.settings.outbox_dir),
        "w",
    )
    with session_scope(engine) as session:
        ids = ledger.due_ids(session, DAY, "email", NOON)
    assert dispatcher.send_ids(ids).sent == 40
    variant_of = {cid: a.variant for cid, a in entries(engine, "subjects").items()}
    subjects = {}
    for path in (world.settings.outbox_dir / DAY.isoformat() / "email").glob("*.eml"):
        text = path.read_text()
        subject = next(line for line in text.splitlines() if line.startswith("Subject:"))
        subjects.setdefault(subject.endswith("2,5% rente op uw spaargeld"), 0)
        subjects[subject.endswith("2,5% rente op uw spaargeld")] += 1
    count_b = sum(v == "B" for v in variant_of.values())
    assert subjects.get(True, 0) == count_b and subjects.get(False, 0) == 40 - count_b
    assert 0 < count_b < 40


def test_state_store_sync_list_and_events(engine, world):
    world.write("stored", campaign_yaml("stored", budget="{daily: 5, total: 9}"))
    world.write("draft-one", campaign_yaml("draft-one", draft="true"))
    world.write("later", campaign_yaml("later", window="{start: 2027-01-01, end: 2027-01-31}"))
    world.write("done", campaign_yaml("done", window="{start: 2026-01-01, end: 2026-01-31}"))
    bank(engine, 12)
    loaded = world.run()
    assert loaded["running"] == ["stored"]
    from outreach.campaigns.loader import load_directory

    files, problems = load_directory(world.settings.campaigns_dir, OFFERS, world.settings.templates_dir)
    assert problems == []
    rows = {s.name: s for s in state.status(engine, files, DAY)}
    assert {n: s.state for n, s in rows.items()} == {
        "stored": "active",
        "draft-one": "draft",
        "later": "scheduled",
        "done": "finished",
    }
    assert (rows["stored"].used_total, rows["stored"].planned_today, rows["stored"].waiting_today) == (
        5,
        5,
        5,
    )
    state.set_paused(engine, "stored", True, detail="test")
    assert {s.name: s.state for s in state.status(engine, files, DAY)}["stored"] == "paused"
    assert [e.kind for e in state.events(engine, "stored")] == ["paused"]
    saved = state.stored(engine)
    assert set(saved) == {"stored", "draft-one", "later", "done"} and saved["stored"].paused
    with pytest.raises(state.UnknownCampaign):
        state.set_paused(engine, "nope", True)
