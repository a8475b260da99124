"""Campaign files: every fixture campaign is valid; every problem names file, line and reason."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from outreach.campaigns.loader import CampaignFileError, campaign_files, load_all, load_file
from outreach.cli import app
from outreach.config import get_settings, load_offers
from tests.fixture_files import CAMPAIGNS_DIR, OFFERS_FILE

REPO = Path(__file__).resolve().parent.parent
OFFERS = load_offers(OFFERS_FILE)
TEMPLATES = REPO / "templates"
runner = CliRunner()

GOOD = """\
name: {name}
owner: marketing@bank.example
offers: [SAVINGS_BOOST]
window:
  start: 2026-10-01
  end: 2026-10-31
audience:
  age: {{min: 25, max: 60}}
  holds: [current_account]
  not_holds: [savings_account]
channels: [email]
send_times:
  email: "08:30"
budget: {{daily: 100, total: 1000}}
variants:
  - name: A
    percent: 50
  - name: B
    percent: 50
    templates: {{email: savings_boost_rate}}
holdout_percent: 10
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[tuple[int, str, str]]:
    with pytest.raises(CampaignFileError) as caught:
        load_file(path, OFFERS, TEMPLATES)
    for problem in caught.value.problems:
        assert problem.file == str(path)
    return [(p.line, p.key, p.reason) for p in caught.value.problems]


def test_every_campaign_in_the_fixture_folder_is_valid():
    files = campaign_files(CAMPAIGNS_DIR)
    assert files, "tests/fixtures/campaigns holds example campaigns"
    loaded, problems = load_all(files, OFFERS, TEMPLATES)
    assert [str(p) for p in problems] == []
    assert {item.campaign.name for item in loaded} == {p.stem for p in files}


def test_a_good_file_loads(tmp_path):
    item = load_file(write(tmp_path, "good", GOOD.format(name="good")), OFFERS, TEMPLATES)
    campaign = item.campaign
    assert campaign.channels == ["email"] and campaign.send_times["email"].hour == 8
    assert [v.name for v in campaign.variants] == ["A", "B"]
    assert campaign.variant_template("B", "email") == "savings_boost_rate"
    assert campaign.variant_template("A", "email") is None


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "reason"),
    [
        ("  end: 2026-10-31", "  end: 2026-09-30", 4, "window", "end 2026-09-30 is before start 2026-10-01"),
        (
            "budget: {daily: 100, total: 1000}",
            "budget: {daily: 1000, total: 100}",
            14,
            "budget",
            "larger than",
        ),
        (
            "    percent: 50\n    templates",
            "    percent: 40\n    templates",
            15,
            "variants",
            "add up to 90, not 100",
        ),
        ("holdout_percent: 10", "holdout_percent: 60", 21, "holdout_percent", "less than or equal to 50"),
        (
            "  age: {min: 25, max: 60}",
            "  age: {min: 65, max: 60}",
            8,
            "audience.age",
            "max 60 is below min 65",
        ),
        (
            "  not_holds: [savings_account]",
            "  not_holds: [Savings Account]",
            10,
            "audience.not_holds",
            "product",
        ),
        ('  email: "08:30"', '  email: "half past eight"', 13, "send_times.email", "time"),
        ("holdout_percent: 10", "holdout_percent: 10\ncolour: blue", 22, "colour", "Extra inputs"),
        ("owner: marketing@bank.example\n", "", 1, "owner", "Field required"),
    ],
)
def test_schema_problems_name_the_line(tmp_path, old, new, line, key, reason):
    text = GOOD.format(name="broken")
    assert old in text
    found = problems_of(write(tmp_path, "broken", text.replace(old, new, 1)))
    assert any(p_line == line and p_key == key and reason in p_reason for p_line, p_key, p_reason in found), (
        found
    )


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "reason"),
    [
        (
            "offers: [SAVINGS_BOOST]",
            "offers: [SAVINGS_BOOST, NO_SUCH]",
            3,
            "offers[1]",
            "'NO_SUCH' is not in the offers",
        ),
        ("channels: [email]", "channels: [email, sms]", 11, "channels[1]", "may only narrow"),
        ('  email: "08:30"', '  letter: "08:30"', 13, "send_times.letter", "not a channel this campaign"),
        (
            "{email: savings_boost_rate}",
            "{email: no_such_template}",
            20,
            "variants[1].templates.email",
            "not found",
        ),
    ],
)
def test_reference_problems_name_the_line(tmp_path, old, new, line, key, reason):
    text = GOOD.format(name="refs")
    found = problems_of(write(tmp_path, "refs", text.replace(old, new, 1)))
    assert any(p_line == line and p_key == key and reason in p_reason for p_line, p_key, p_reason in found), (
        found
    )


def test_send_time_must_lie_in_the_channel_window(tmp_path):
    text = (
        GOOD.format(name="late")
        .replace("channels: [email]", "channels: [email]")
        .replace("offers: [SAVINGS_BOOST]", "offers: [TRAVEL_INSURANCE]")
    )
    text = text.replace('  email: "08:30"', '  sms: "21:30"').replace(
        "channels: [email]", "channels: [sms, email]"
    )
    text = text.replace("{email: savings_boost_rate}", "{sms: travel_insurance_short}")
    text = text.replace("not_holds: [savings_account]", "not_holds: [travel_insurance]")
    found = problems_of(write(tmp_path, "late", text))
    assert found == [
        (
            13,
            "send_times.sms",
            "21:30 is outside the sms sending window 09:00-20:00: messages would wait a day",
        )
    ]


def test_a_broken_template_is_named_with_its_line(tmp_path):
    templates = tmp_path / "templates" / "sms"
    templates.mkdir(parents=True)
    (templates / "broken.nl.txt.j2").write_text("Hallo\n{{ customer.first_name \n", encoding="utf-8")
    text = textwrap.dedent(
        """\
        name: tpl
        owner: me
        offers: [TRAVEL_INSURANCE]
        window: {start: 2026-10-01, end: 2026-10-02}
        variants:
          - {name: A, percent: 100, templates: {sms: broken}}
        """
    )
    path = write(tmp_path, "tpl", text)
    with pytest.raises(CampaignFileError) as caught:
        load_file(path, OFFERS, tmp_path / "templates")
    (problem,) = caught.value.problems
    assert (problem.line, problem.key) == (6, "variants[0].templates.sms")
    assert "broken.nl.txt.j2 line 2" in problem.reason


def test_a_variant_template_gets_the_templates_check(tmp_path):
    """A variant's SMS without its opt-out is an error of the campaign, at the variant's line."""
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    (templates / "sms" / "no_stop.nl.txt.j2").write_text("{{ customer.first_name }}, reis verzekerd!\n")
    text = textwrap.dedent(
        """\
        name: nostop
        owner: me
        offers: [TRAVEL_INSURANCE]
        window: {start: 2026-10-01, end: 2026-10-02}
        variants:
          - {name: A, percent: 50}
          - {name: B, percent: 50, templates: {sms: no_stop}}
        """
    )
    with pytest.raises(CampaignFileError) as caught:
        load_file(write(tmp_path, "nostop", text), OFFERS, templates)
    problems = caught.value.problems  # also: no word of payments, no STOPALL (the transparency check)
    assert {(p.line, p.key) for p in problems} == {(7, "variants[1].templates.sms")}
    assert any("no_stop.nl.txt.j2" in p.reason and "SMS without opt-out" in p.reason for p in problems)


def test_yaml_syntax_errors_duplicate_keys_and_file_names(tmp_path):
    assert problems_of(write(tmp_path, "syntax", "name: syntax\nowner: [unclosed\n"))[0][0] == 3
    dup = GOOD.format(name="dup").replace("holdout_percent: 10", "holdout_percent: 10\nowner: someone")
    (line, key, reason) = problems_of(write(tmp_path, "dup", dup))[0]
    assert (line, key) == (22, "(yaml)") and "duplicate key" in reason
    (line, key, reason) = problems_of(write(tmp_path, "file-name", GOOD.format(name="other-name")))[0]
    assert (line, key) == (1, "name") and "must be other-name.yaml" in reason


def test_names_are_unique_across_files(tmp_path):
    first = write(tmp_path, "same", GOOD.format(name="same"))
    second_dir = tmp_path / "more"
    second_dir.mkdir()
    second = write(second_dir, "same", GOOD.format(name="same"))
    loaded, problems = load_all([first, second], OFFERS, TEMPLATES)
    assert len(loaded) == 1 and len(problems) == 1
    assert problems[0].file == str(second) and "also defined in" in problems[0].reason


@pytest.fixture
def cli(tmp_path, monkeypatch, sqlite_url):
    monkeypatch.setenv("OUTREACH_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("OUTREACH_OFFERS_FILE", str(OFFERS_FILE))
    monkeypatch.setenv("OUTREACH_TEMPLATES_DIR", str(TEMPLATES))
    monkeypatch.setenv("OUTREACH_CAMPAIGNS_DIR", str(CAMPAIGNS_DIR))
    get_settings.cache_clear()
    yield lambda *args: runner.invoke(app, list(args), env={"COLUMNS": "200"})
    get_settings.cache_clear()


def test_cli_validate_lists_file_line_reason_and_exits_1(cli, tmp_path):
    ok = cli("campaigns", "validate")
    assert ok.exit_code == 0, ok.output
    assert "2 valid, 0 with problems" in ok.output
    bad = write(
        tmp_path,
        "bad",
        GOOD.format(name="bad").replace("percent: 50\n    templates", "percent: 10\n    templates"),
    )
    result = cli("campaigns", "validate", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:15: variants: variant percentages add up to 60, not 100" in result.output
