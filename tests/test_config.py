"""One settings tree and one YAML library: configuration is read in outreach.config only."""

import re
from pathlib import Path

import pytest

from outreach.config import ConfigError, Settings, load_offers
from tests.fixture_files import OFFERS_FILE

REPO = Path(__file__).resolve().parent.parent
# variables that belong to a library, not settings of ours: the HTTP stack's CA bundle (as requests
# honours it) and prometheus-client's multiprocess directory (the library itself reads it)
ALLOWED = {"channels/twilio_transport.py", "outreach/web/metrics.py", "outreach/cli/serve.py"}
READ = re.compile(r"os\.environ\.get\(|os\.getenv\(|environ\[[^\]]+\](?!\s*=)|environ\.copy\(")


def test_only_the_settings_tree_reads_the_environment():
    readers = []
    for package in ("outreach", "channels", "flows"):
        for path in (REPO / package).rglob("*.py"):
            name = path.relative_to(REPO).as_posix()
            if name not in ALLOWED and READ.search(path.read_text(encoding="utf-8")):
                readers.append(name)
    assert readers == []


def test_providers_and_subsystems_are_nested_models_with_secrets_masked(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "twilio-token")
    monkeypatch.setenv("OUTREACH_SENDGRID_WEBHOOK_PUBLIC_KEY", "key")
    monkeypatch.setenv("OUTREACH_SESSION_SECRET", "cookie-secret")
    monkeypatch.setenv("OUTREACH_CALLS_MAX_ATTEMPTS", "5")
    settings = Settings()
    assert settings.twilio.auth_token.get_secret_value() == "twilio-token"
    assert settings.sendgrid.webhook_public_key == "key"
    assert (settings.calls.max_attempts, settings.calls.session_secret.get_secret_value()) == (
        5,
        "cookie-secret",
    )
    assert "twilio-token" not in repr(settings) and "cookie-secret" not in repr(settings)


def test_an_offers_error_names_file_line_and_key(tmp_path):
    source = (OFFERS_FILE).read_text(encoding="utf-8")
    line = next(i for i, text in enumerate(source.splitlines(), 1) if "priority:" in text)
    bad = tmp_path / "offers.yaml"
    bad.write_text(source.replace("priority: ", "priority: lots", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_offers(bad)
    assert str(error.value).startswith(f"{bad}: line {line}: offers[")
    assert ".priority: " in str(error.value)


def test_offers_times_are_yaml_1_2_text_even_unquoted(tmp_path):
    source = (OFFERS_FILE).read_text(encoding="utf-8").replace('"20:00"', "20:00")
    path = tmp_path / "offers.yaml"
    path.write_text(source, encoding="utf-8")
    assert load_offers(path).policy.quiet_hours["sms"].end.hour == 20  # YAML 1.1 read 20:00 as 1200
