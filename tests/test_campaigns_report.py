"""The campaign report on real storage: exact counts, the conversion window, uplift, chart, Markdown,
HTML and the CLI; and the demo campaign."""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from outreach.campaigns import state
from outreach.campaigns.daily import load_campaign_candidates
from outreach.campaigns.report import build_report
from outreach.campaigns.tables import CampaignAssignment
from outreach.cli import app
from outreach.config import Settings, get_settings, load_offers
from outreach.db import make_engine, session_scope
from outreach.models import Decision, DeliveryEventRecord, Holding, Message
from outreach.planning import decide_day
from tests.factories import add_customers, customer
from tests.fixture_files import CAMPAIGNS_DIR, OFFERS_FILE

REPO = Path(__file__).resolve().parent.parent
OFFERS = load_offers(OFFERS_FILE)
DAY = date(2026, 9, 8)
AS_OF = date(2026, 11, 20)
CAMPAIGN = """\
name: measured
owner: marketing@bank.example
offers: [SAVINGS_BOOST]
window: {start: 2026-09-07, end: 2026-09-11}
audience: {holds: [current_account], not_holds: [savings_account]}
channels: [email]
variants:
  - {name: A, percent: 50}
  - {name: B, percent: 50, templates: {email: savings_boost_rate}}
holdout_percent: 25
attribution_days: 30
"""


def settings_for(url: str, folder: Path) -> Settings:
    return Settings(
        database_url=url,
        offers_file=OFFERS_FILE,
        templates_dir=REPO / "templates",
        campaigns_dir=folder,
        outbox_dir=folder / "outbox",
    )


def run_measured_campaign(engine, folder: Path) -> dict[str, list[str]]:
    """400 customers enter one day; then exactly 12% of the treated and 5% of the control convert,
    plus conversions that must not count. Returns the customer ids per arm."""
    folder.mkdir(exist_ok=True)
    (folder / "measured.yaml").write_text(CAMPAIGN, encoding="utf-8")
    ids = [f"C{i:05d}" for i in range(400)]
    add_customers(engine, *[customer(cid) for cid in ids])
    with session_scope(engine) as session:
        session.execute(insert(Holding), [{"customer_id": c, "product": "current_account"} for c in ids])
    load_campaign_candidates(engine, settings_for(str(engine.url), folder), DAY)
    decide_day(engine, DAY, OFFERS, now=datetime(2026, 9, 8, 10, 0, tzinfo=UTC))
    with session_scope(engine) as session:
        rows = session.execute(select(CampaignAssignment.customer_id, CampaignAssignment.arm)).all()
        arms: dict[str, list[str]] = {"treatment": [], "control": []}
        for cid, arm in sorted(rows):
            arms[arm].append(cid)
        treated, control = arms["treatment"], arms["control"]
        # the ledger's side: every treated message sent, all but 10 delivered, 7 clicked
        messages = dict(session.execute(select(Message.customer_id, Message.id)).all())
        session.execute(update(Message).values(status="delivered"))
        session.execute(update(Message).where(Message.customer_id.in_(treated[:10])).values(status="bounced"))
        session.execute(
            insert(DeliveryEventRecord),
            [
                {
                    "message_id": messages[cid],
                    "channel": "email",
                    "provider": "test",
                    "provider_event_id": f"click-{cid}",
                    "event_type": "clicked",
                    "occurred_at": datetime(2026, 9, 9, tzinfo=UTC),
                    "received_at": datetime(2026, 9, 9, tzinfo=UTC),
                }
                for cid in treated[20:27]
            ],
        )
        k_t, k_c = round(len(treated) * 0.12), round(len(control) * 0.05)
        opened = [(cid, DAY + timedelta(days=3)) for cid in treated[-k_t:]]
        opened += [(cid, DAY + timedelta(days=30)) for cid in control[-k_c:]]  # the window's last day
        # not conversions: before entering, after the attribution window, another product
        opened += [(control[0], DAY - timedelta(days=1)), (control[1], DAY + timedelta(days=31))]
        session.execute(
            insert(Holding),
            [{"customer_id": c, "product": "savings_account", "opened_at": d} for c, d in opened]
            + [{"customer_id": treated[0], "product": "credit_card", "opened_at": DAY + timedelta(days=2)}],
        )
    arms["k"] = [str(k_t), str(k_c)]
    return arms


def test_report_counts_are_exact_and_uplift_has_its_interval(engine, tmp_path):
    arms = run_measured_campaign(engine, tmp_path / "campaigns")
    treated, control = arms["treatment"], arms["control"]
    k_t, k_c = (int(x) for x in arms["k"])
    assert 60 <= len(control) <= 140
    report = build_report(engine, "measured", OFFERS, as_of=AS_OF)
    assert report.state == "finished"
    rows = {(r.arm, r.variant, r.channel): r for r in report.rows}
    everyone = rows[("treatment", "all", "all")]
    ctrl = rows[("control", "all", "all")]
    assert (everyone.entered, everyone.contacted, everyone.delivered) == (
        len(treated),
        len(treated),
        len(treated) - 10,
    )
    assert (everyone.responded, everyone.converted) == (7, k_t)
    assert (ctrl.entered, ctrl.contacted, ctrl.converted) == (len(control), 0, k_c)
    u = everyone.uplift
    assert u.difference == pytest.approx(k_t / len(treated) - k_c / len(control))
    assert u.low < u.difference < u.high
    by_variant = [
        r for r in report.rows if r.arm == "treatment" and r.variant in ("A", "B") and r.channel == "all"
    ]
    assert sum(r.entered for r in by_variant) == len(treated)
    assert sum(r.converted for r in by_variant) == k_t
    assert rows[("control", "all", "email")].entered == len(control)  # would-have-been channel
    # a shorter attribution window drops the control conversions on day 30
    shorter = build_report(engine, "measured", OFFERS, as_of=AS_OF, attribution_days=29)
    assert {(r.arm, r.variant, r.channel): r for r in shorter.rows}[("control", "all", "all")].converted == 0
    # the day-by-day series ends at the arms' rates
    last = report.daily.filter(report.daily["day"] == AS_OF)
    assert dict(zip(last["arm"], last["converted"], strict=True)) == {"treatment": k_t, "control": k_c}
    curve = report.curve.filter(report.curve["days"] == 30)
    assert dict(zip(curve["arm"], curve["share"], strict=True))["control"] == pytest.approx(
        k_c / len(control)
    )


def test_report_outputs_markdown_html_and_png(engine, tmp_path):
    run_measured_campaign(engine, tmp_path / "campaigns")
    report = build_report(engine, "measured", OFFERS, as_of=AS_OF)
    markdown = report.to_markdown(chart="measured-uplift.png")
    assert markdown.startswith("# Campaign report: measured")
    assert "| treatment | all | all |" in markdown and "![conversions over time" in markdown
    assert report.headline() in markdown
    html = report.to_html()
    assert html.startswith("<!doctype html>") and 'src="data:image/png;base64,' in html
    assert "C0000" not in markdown and "C0000" not in html  # counts only, no customer
    png = report.chart_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    table = report.table()
    assert table[0]["arm"] == "treatment" and table[0]["ci95_low_pp"] < table[0]["uplift_pp"]
    early = build_report(engine, "measured", OFFERS, as_of=DAY + timedelta(days=2))
    assert early.state == "active" and "still open" in early.notes[0]


@pytest.fixture
def cli(sqlite_url, tmp_path, monkeypatch):
    folder = tmp_path / "campaigns"
    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("OUTREACH_OFFERS_FILE", str(OFFERS_FILE))
    monkeypatch.setenv("OUTREACH_TEMPLATES_DIR", str(REPO / "templates"))
    monkeypatch.setenv("OUTREACH_CAMPAIGNS_DIR", str(folder))
    get_settings.cache_clear()
    engine = make_engine(sqlite_url)
    run_measured_campaign(engine, folder)
    yield lambda *args: CliRunner().invoke(app, list(args), env={"COLUMNS": "220"})
    engine.dispose()
    get_settings.cache_clear()


def test_cli_list_show_pause_resume_report(cli, tmp_path):
    listed = cli("campaigns", "list", "--date", "2026-09-08")
    assert listed.exit_code == 0, listed.output
    assert "measured" in listed.output and "active" in listed.output
    shown = cli("campaigns", "show", "measured", "--date", "2026-10-08")
    assert shown.exit_code == 0, shown.output
    assert "finished on 2026-10-08" in shown.output and "holds current_account" in shown.output
    paused = cli("campaigns", "pause", "measured")
    assert paused.exit_code == 0 and "measured paused" in paused.output
    assert "already paused" in cli("campaigns", "pause", "measured").output
    assert "paused" in cli("campaigns", "show", "measured", "--date", "2026-09-09").output
    assert "resumed" in cli("campaigns", "resume", "measured").output
    missing = cli("campaigns", "show", "nope")
    assert missing.exit_code == 2 and "no campaign 'nope'" in missing.output
    out = tmp_path / "reports"
    result = cli("campaigns", "report", "measured", "--out", str(out), "--date", "2026-11-20")
    assert result.exit_code == 0, result.output
    assert "converted at" in result.output
    assert {p.name for p in out.iterdir()} == {"measured.md", "measured.html", "measured-uplift.png"}


def test_demo_campaign_has_a_real_result(sqlite_url, tmp_path):
    """seed_demo_campaign on a small synthetic bank: a finished campaign, both arms, conversions."""
    from outreach.importer import import_directory
    from outreach_dev.demo_campaign import seed_demo_campaign
    from outreach_dev.synth import generate

    engine = make_engine(sqlite_url)
    generate(tmp_path / "bank", customers=1200, seed=3, as_of=date(2026, 11, 21))
    import_directory(engine, tmp_path / "bank")
    settings = settings_for(sqlite_url, CAMPAIGNS_DIR)
    summary = seed_demo_campaign(engine, settings)
    assert summary.days == 26 and summary.treated > 100 and summary.control > 20
    assert summary.conversions > 0 and summary.clicks > 0
    assert seed_demo_campaign(engine, settings).skipped  # idempotent
    report = build_report(engine, "savings-autumn-2026", OFFERS, as_of=date(2026, 11, 21))
    assert report.state == "finished"
    overall = report.overall()
    assert overall.entered == summary.treated and overall.converted > 0 and overall.uplift is not None
    with session_scope(engine) as session:
        decided = session.scalars(select(Decision.reason).distinct()).all()
    assert "control_group" in decided
    engine.dispose()


@pytest.mark.parametrize("name", ["savings-autumn-2026", "travel-spring-2027"])
def test_repository_campaigns_never_run_by_accident(name, sqlite_url, tmp_path):
    """The shipped examples are finished or a draft: a run today loads none of their candidates."""
    engine = make_engine(sqlite_url)
    add_customers(engine, customer("C1"))
    loaded = load_campaign_candidates(engine, settings_for(sqlite_url, CAMPAIGNS_DIR), date(2026, 11, 21))
    assert loaded["running"] == [] and loaded["invalid"] == []
    assert name in state.stored(engine)
    engine.dispose()


def test_an_invalid_campaign_file_is_left_out_of_the_day_not_fatal(sqlite_url, tmp_path, caplog):
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "broken.yaml").write_text(textwrap.dedent("name: broken\nowner: x\n"), encoding="utf-8")
    engine = make_engine(sqlite_url)
    loaded = load_campaign_candidates(engine, settings_for(sqlite_url, folder), DAY)
    assert loaded["running"] == []
    assert any(p.startswith(f"{folder / 'broken.yaml'}:1: offers: Field required") for p in loaded["invalid"])
    assert "campaign file left out" in caplog.text
    engine.dispose()
