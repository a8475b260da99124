"""The files the repository ships for operators (offers.yaml, campaigns/) stay valid.

Every other test reads the copies in tests/fixtures; this one validates whatever the operators' folders
hold now, so a marketer adding a valid campaign keeps the suite green and an invalid one turns it red.
"""

from __future__ import annotations

from outreach.campaigns.loader import campaign_files, load_all, variant_offers
from outreach.config import load_offers
from outreach.templates_check import check_templates
from tests.fixture_files import REPO

TEMPLATES = REPO / "templates"


def test_the_shipped_offers_file_loads_and_its_templates_check():
    offers = load_offers(REPO / "offers.yaml")
    report = check_templates(TEMPLATES, offers)
    assert [str(p) for p in report.errors] == []


def test_every_shipped_campaign_is_valid_against_the_shipped_offers():
    offers = load_offers(REPO / "offers.yaml")
    loaded, problems = load_all(campaign_files(REPO / "campaigns"), offers, TEMPLATES)
    assert [str(p) for p in problems] == []
    report = check_templates(
        TEMPLATES, offers, also=[o for item in loaded for o in variant_offers(item.campaign, offers)]
    )
    assert [str(p) for p in report.errors] == []
