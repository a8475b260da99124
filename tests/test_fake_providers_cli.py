"""`outreach fake-providers` in its own process: the SDK adapters talk to it, the control API steers it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from channels.sendgrid_email import SendGridEmail
from channels.twilio_sms import TwilioSMS
from tests.provider_fakes import SENDER, mail, sms
from tests.timeshift.sitecustomize import python_path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port}")


def control(url: str, path: str, payload: dict | None = None):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_fake_providers_command_serves_both_apis_with_faults():
    twilio_port, sendgrid_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from outreach.cli import main; main()",
            "fake-providers",
            "--twilio-port",
            str(twilio_port),
            "--sendgrid-port",
            str(sendgrid_port),
            "--no-callbacks",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": python_path(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_listening(twilio_port)
        wait_listening(sendgrid_port)
        twilio_url, sendgrid_url = f"http://127.0.0.1:{twilio_port}", f"http://127.0.0.1:{sendgrid_port}"
        control(twilio_url, "/_fake/faults", {"script": ["503"], "retry_after": 0})
        sms_channel = TwilioSMS(
            "AC" + "0" * 32, "test-auth-token", from_=SENDER, api_url=twilio_url, sleep=lambda s: None
        )
        email_channel = SendGridEmail("SG.test-key", "aanbod@bank.example", api_url=sendgrid_url)
        assert list(sms_channel.send_batch([sms(1)]).results) == ["1"]
        assert list(email_channel.send_batch([mail(2)]).results) == ["2"]
        sms_channel.close()
        email_channel.close()
        seen = control(twilio_url, "/_fake/requests")
        assert [(r["status"], r["fault"]) for r in seen] == [(503, "503"), (201, None)]
        assert control(sendgrid_url, "/_fake/state") == {"mails": 1, "duplicates": {}}
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=10)[0].decode()
    assert process.returncode == 0
    assert f"OUTREACH_TWILIO_API_URL=http://127.0.0.1:{twilio_port}" in output
