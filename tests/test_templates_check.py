"""`outreach templates check` on the repo's own templates, and on broken copies of them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from outreach.campaigns.loader import load_directory, variant_offers
from outreach.cli import app
from outreach.config import load_offers
from outreach.templates_check import check_templates
from tests.fixture_files import CAMPAIGNS_DIR, OFFERS_FILE

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def offers():
    return load_offers(OFFERS_FILE)


@pytest.fixture
def copy(tmp_path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(REPO / "templates", target)
    return target


def errors(templates: Path, offers, max_segments: int = 2) -> list[str]:
    return [str(p) for p in check_templates(templates, offers, max_segments).errors]


def test_repo_templates_pass(offers):
    # the campaigns' variant templates are used too (as the offer with the variant's templates)
    loaded, _ = load_directory(CAMPAIGNS_DIR, offers, REPO / "templates")
    variants = [o for item in loaded for o in variant_offers(item.campaign, offers)]
    assert variants
    report = check_templates(REPO / "templates", offers, 2, also=variants)
    assert report.ok, "\n".join(map(str, report.problems))
    # every offer x channel x language x sample customer x trigger x offer variant was rendered
    assert report.renders == (len(offers.offers) + len(variants)) * 4 * 2 * 4 * 2 * 2
    assert not report.warnings


def test_cli_check_passes_on_the_repo(monkeypatch):
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(app, ["templates", "check"])
    assert result.exit_code == 0, result.output
    assert "templates OK" in result.output


def test_undefined_variable_fails_with_file_and_line(copy, offers):
    path = copy / "letter/kids_savings.en.txt.j2"
    lines = path.read_text().splitlines()
    lines.insert(2, "Your adviser {{ customer.adviser_name }} is happy to help.")
    path.write_text("\n".join(lines))
    found = errors(copy, offers)
    assert any("letter/kids_savings.en.txt.j2:3:" in e and "adviser_name" in e for e in found), found


def test_sms_over_the_segment_limit_fails(copy, offers):
    path = copy / "sms/travel_insurance.nl.txt.j2"
    path.write_text(path.read_text().replace("op reis?", "op reis? 🌴 Zon, zee en zorgeloos:"))
    found = errors(copy, offers)
    assert any("sms/travel_insurance.nl.txt.j2" in e and "3 segment(s), UCS-2" in e for e in found), found
    # the same text passes with a higher limit
    assert not errors(copy, offers, max_segments=3)


def test_sms_without_stop_fails(copy, offers):
    path = copy / "sms/_notice.en.txt.j2"  # every English SMS includes it
    path.write_text(path.read_text().replace("STOPALL", "NO"))
    found = errors(copy, offers)
    assert any("sms/kids_savings.en.txt.j2" in e and 'reply "STOP"' in e for e in found), found
    assert any("sms/kids_savings.en.txt.j2" in e and "STOPALL" in e for e in found), found


def test_email_without_plain_text_fails(copy, offers):
    (copy / "email/credit_card.nl.txt.j2").unlink()
    found = errors(copy, offers)
    assert any("email/credit_card.nl.txt.j2" in e and "without a plain-text part" in e for e in found), found


def test_email_html_without_unsubscribe_link_fails(copy, offers):
    (copy / "email/_footer.en.html.j2").write_text("<p>Voorbeeldbank</p>")
    found = errors(copy, offers)
    assert any("email/kids_savings.en.html.j2" in e and "unsubscribe" in e for e in found), found


def test_letter_without_opt_out_line_fails(copy, offers):
    path = copy / "letter/savings_boost.nl.txt.j2"
    path.write_text("\n".join(line for line in path.read_text().splitlines() if "_notice" not in line))
    found = errors(copy, offers)
    assert any("letter/savings_boost.nl.txt.j2" in e and "opt-out" in e for e in found), found


def test_call_script_without_spoken_notice_fails(copy, offers):
    path = copy / "call/invest_call.en.txt.j2"
    path.write_text("\n".join(line for line in path.read_text().splitlines() if "_notice" not in line))
    found = errors(copy, offers)
    assert any("call/invest_call.en.txt.j2" in e and "spoken opt-out" in e for e in found), found


@pytest.mark.parametrize(
    ("shared", "drop", "template", "missing"),
    [
        (
            "letter/_notice.nl.txt.j2",
            "op basis van uw betalingen bij ons",
            "letter/kids_savings.nl.txt.j2",
            "payments",
        ),
        ("letter/_notice.en.txt.j2", "all marketing", "letter/credit_card.en.txt.j2", "all marketing"),
        ("email/_footer.nl.html.j2", "alle reclame", "email/invest_call.nl.html.j2", "all marketing"),
        ("email/_footer.en.txt.j2", "based on your payments", "email/kids_savings.en.txt.j2", "payments"),
        ("call/_notice.nl.txt.j2", "uw betalingen", "call/invest_call.nl.txt.j2", "payments"),
        ("sms/_notice.nl.txt.j2", "Obv uw betalingen. ", "sms/travel_insurance.nl.txt.j2", "payments"),
    ],
)
def test_a_message_must_say_it_is_based_on_payments_and_how_to_object_to_all(
    copy, offers, shared, drop, template, missing
):
    path = copy / shared
    text = path.read_text()
    assert drop in text
    path.write_text(text.replace(drop, ""))
    found = errors(copy, offers)
    assert any(e.startswith(f"templates/{template}") or f"/{template}:" in e for e in found), found
    assert any(template in e and missing in e for e in found), found


def test_syntax_error_names_the_line(copy, offers):
    path = copy / "call/kids_savings.nl.txt.j2"
    path.write_text(path.read_text() + "\n{% if customer.first_name %}\nno endif")
    found = errors(copy, offers)
    assert any("call/kids_savings.nl.txt.j2:" in e and "TemplateSyntaxError" in e for e in found), found


def test_missing_english_is_a_warning_missing_dutch_an_error(copy, offers):
    for part in ("subject", "txt", "html"):
        (copy / f"email/kids_savings.en.{part}.j2").unlink()
    report = check_templates(copy, offers, 2)
    assert report.ok
    assert any("no en email template" in str(w) for w in report.warnings)
    (copy / "sms/kids_savings.nl.txt.j2").unlink()
    assert any("KIDS_SAVINGS sends by sms but has no nl template" in e for e in errors(copy, offers))


def test_cli_check_exits_1_and_prints_the_problem(copy, monkeypatch):
    path = copy / "sms/credit_card.en.txt.j2"
    path.write_text("{{ customer.first_name }}, " + "very long text " * 20 + "Reply STOP")
    monkeypatch.chdir(copy.parent)
    shutil.copy(OFFERS_FILE, copy.parent / "offers.yaml")
    result = CliRunner().invoke(app, ["templates", "check", "--templates-dir", str(copy)])
    assert result.exit_code == 1
    assert "templates/sms/credit_card.en.txt.j2: error: SMS is" in result.output
