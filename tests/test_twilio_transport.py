"""The urllib3 transport under the Twilio SDK reads proxies and CA bundle from the environment once."""

import pytest
import urllib3

from channels.twilio_transport import Urllib3HttpClient


def test_no_proxy_configured_means_a_direct_pool(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    client = Urllib3HttpClient(api_url="https://api.twilio.com", timeout=5)
    assert type(client.pool) is urllib3.PoolManager


def test_https_proxy_from_the_environment_is_used(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.bank.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = Urllib3HttpClient(api_url="https://api.twilio.com", timeout=5)
    assert isinstance(client.pool, urllib3.ProxyManager)
    assert client.pool.proxy.host == "proxy.bank.example"


def test_no_proxy_exempts_the_api_host(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.bank.example:3128")
    monkeypatch.setenv("NO_PROXY", "api.twilio.com")
    client = Urllib3HttpClient(api_url="https://api.twilio.com", timeout=5)
    assert not isinstance(client.pool, urllib3.ProxyManager)


def test_ca_bundle_from_the_environment(monkeypatch, tmp_path):
    bundle = tmp_path / "bank-ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    client = Urllib3HttpClient(api_url="https://api.twilio.com", timeout=5)
    assert client.pool.connection_pool_kw["ca_certs"] == str(bundle)


def test_zero_timeout_is_refused_like_the_sdk_does():
    client = Urllib3HttpClient(api_url="https://api.twilio.com", timeout=5)
    with pytest.raises(ValueError):
        client.request("GET", "https://api.twilio.com/x", timeout=0)
