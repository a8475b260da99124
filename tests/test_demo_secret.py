"""`outreach demo` makes a local unsubscribe secret once, so demo emails carry signed personal links."""

from outreach.cli.run import _demo_unsubscribe_secret
from outreach.config import get_settings
from outreach.dispatch import unsubscribe_link
from outreach.unsubscribe import verify


def test_demo_makes_one_secret_in_dot_env_and_links_become_personal(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OUTREACH_UNSUBSCRIBE_SECRET", raising=False)
    get_settings.cache_clear()
    try:
        before = get_settings()
        assert unsubscribe_link(before, "C1", "email").endswith("/unsubscribe")  # the general page
        settings = _demo_unsubscribe_secret(before, tmp_path / ".env")
        secret = settings.unsubscribe_secret.get_secret_value()
        assert (
            len(secret) >= 32 and f"OUTREACH_UNSUBSCRIBE_SECRET={secret}" in (tmp_path / ".env").read_text()
        )
        link = unsubscribe_link(settings, "C1", "email")
        assert "/unsubscribe/" in link and "C1" not in link.split("/")
        assert verify(link.rsplit("/", 1)[1], settings) == ("C1", "email")
        again = _demo_unsubscribe_secret(get_settings(), tmp_path / ".env")  # a second demo run
        assert again.unsubscribe_secret.get_secret_value() == secret
        assert (tmp_path / ".env").read_text().count("OUTREACH_UNSUBSCRIBE_SECRET=") == 1
    finally:
        monkeypatch.delenv("OUTREACH_UNSUBSCRIBE_SECRET", raising=False)
        get_settings.cache_clear()
