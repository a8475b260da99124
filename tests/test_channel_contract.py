"""The channel contract, checked for every registered channel (the ``outreach.channels`` entry
points): what every adapter must do, and that its declared capabilities are exactly the ones it
implements. The HTTP adapters run against the local provider servers, built from the settings tree
as ``outreach.channel_setup.open_channel`` builds them in production."""

from __future__ import annotations

from datetime import date

import pytest

from channels import available, load_channel
from channels.base import (
    Address,
    BaseChannel,
    BatchOutcome,
    Capability,
    Channel,
    OutboundMessage,
    UnsupportedCapability,
)
from channels.errors import ChannelError
from outreach.channel_setup import channel_options
from outreach.config import SendGridSettings, Settings, TwilioSettings
from outreach_dev.fakes.sendgrid_server import SendGridServer
from outreach_dev.fakes.twilio_server import TwilioServer

REGISTERED = available()
OPTIONAL = {Capability.RECONCILE: "reconcile", Capability.STATUS_LOOKUP: "fetch_status"}
TO = {"sms": "+31612345678", "call": "+31612345678", "email": "klant@example.nl", "letter": "C1"}


def message(kind: str, n: int) -> OutboundMessage:
    return OutboundMessage(
        message_id=str(n),
        channel=kind,
        customer_id=f"C{n}",
        offer_code="KIDS_SAVINGS",
        run_date=date(2026, 11, 18),
        to=TO[kind].replace("345", f"{n:03d}") if kind != "letter" else f"C{n}",
        body=f"Beste klant {n}, een aanbod. STOP? Antwoord STOP.",
        subject="Een aanbod",
        html=None,
        address=Address("A. Klant", "Kerkstraat", "12", "1234 AB", "Amsterdam") if kind == "letter" else None,
    )


@pytest.fixture(params=REGISTERED)
def adapter(request, tmp_path):
    backend, kind = request.param.split("-", 1)
    with TwilioServer(strict=True) as twilio, SendGridServer(strict=True) as sendgrid:
        settings = Settings(
            outbox_dir=tmp_path,
            twilio=TwilioSettings(
                account_sid=twilio.account_sid,
                auth_token=twilio.auth_token,
                from_="+3197010000001",
                api_url=twilio.url,
            ),
            sendgrid=SendGridSettings(
                api_key=sendgrid.api_key, from_email="aanbod@bank.example", api_url=sendgrid.url
            ),
        )
        channel = load_channel(kind, backend, **channel_options(settings, kind, backend))
        yield channel
        channel.close()


def test_every_kind_has_a_dev_and_a_test_channel():
    for kind in ("sms", "email", "letter", "call"):
        assert f"outbox-{kind}" in REGISTERED and f"memory-{kind}" in REGISTERED


def test_the_adapter_is_a_channel_and_names_itself(adapter, request):
    name = request.node.callspec.params["adapter"]
    assert isinstance(adapter, Channel) and isinstance(adapter, BaseChannel)
    assert adapter.kind == name.split("-", 1)[1]
    assert isinstance(adapter.provider, str) and adapter.provider


def test_declared_capabilities_are_exactly_the_implemented_ones(adapter):
    assert Capability.SEND in adapter.capabilities and adapter.capabilities <= set(Capability)
    for capability, method in OPTIONAL.items():
        implemented = getattr(type(adapter), method) is not getattr(BaseChannel, method)
        assert adapter.supports(capability) == implemented, (capability, type(adapter).__name__)


def test_an_undeclared_capability_is_refused_with_a_channel_error(adapter):
    for capability, method in OPTIONAL.items():
        if not adapter.supports(capability):
            with pytest.raises(UnsupportedCapability):
                getattr(adapter, method)([], *([date(2026, 1, 1)] if method == "reconcile" else []))
            assert issubclass(UnsupportedCapability, ChannelError)


def test_an_empty_batch_sends_nothing_and_answers_empty(adapter):
    outcome = adapter.send_batch([])
    assert isinstance(outcome, BatchOutcome) and (outcome.results, outcome.errors) == ({}, {})


def test_every_message_gets_exactly_one_outcome(adapter):
    messages = [message(adapter.kind, n) for n in (1, 2, 3)]
    outcome = adapter.send_batch(messages)
    assert set(outcome.results) | set(outcome.errors) == {"1", "2", "3"}
    assert not set(outcome.results) & set(outcome.errors)
    assert set(outcome.results) == {"1", "2", "3"}, outcome.errors  # every fake provider accepts these
    assert all(r.message_id == mid for mid, r in outcome.results.items())


def test_close_may_be_called_twice(adapter):
    adapter.send_batch([message(adapter.kind, 4)])
    adapter.close()
    adapter.close()
