"""The legitimate-interest assessment each offer in an offers file must carry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from outreach.config import ConfigError, Offer, load_offers

FIXTURE = Path(__file__).parent / "fixtures" / "offers.yaml"


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "offers.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_every_offer_in_the_fixture_carries_its_assessment():
    offers = load_offers(FIXTURE)
    for offer in offers.offers:
        record = offer.legitimate_interest
        assert record is not None, offer.code
        labels = [label for label, _ in record.as_rows()]
        assert labels[0] == "Purpose" and "Retention" in labels


def test_an_offer_without_its_assessment_fails_naming_file_and_key(tmp_path):
    data = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    del data["offers"][0]["legitimate_interest"]
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_offers(path)
    message = str(caught.value)
    assert re.match(rf"{re.escape(str(path))}: line \d+: offers\[KIDS_SAVINGS\]", message), message
    assert "legitimate_interest" in message and len(message.splitlines()) == 1


def test_a_missing_field_of_the_assessment_is_named(tmp_path):
    data = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    del data["offers"][1]["legitimate_interest"]["balancing"]
    data["offers"][2]["legitimate_interest"]["purpose"] = "tbd"  # a placeholder is no assessment
    with pytest.raises(ConfigError) as caught:
        load_offers(_write(tmp_path, data))
    lines = str(caught.value).splitlines()
    assert any("offers[INVEST_CALL].legitimate_interest.balancing: Field required" in line for line in lines)
    assert any("offers[SAVINGS_BOOST].legitimate_interest.purpose" in line for line in lines)


def test_an_offer_on_consent_needs_no_assessment(tmp_path):
    data = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    del data["offers"][0]["legitimate_interest"]
    data["offers"][0]["legal_basis"] = "consent"
    assert load_offers(_write(tmp_path, data)).by_code()["KIDS_SAVINGS"].legitimate_interest is None


def test_an_offer_built_in_code_may_omit_it():
    offer = Offer(code="X_TEST", product="p", topic="t", priority=1, channels=["sms"])
    assert offer.legitimate_interest is None
