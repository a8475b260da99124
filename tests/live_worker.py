"""A live-lane consumer in its own process (for the SIGKILL test):
python -m tests.live_worker DB_URL STREAM SUBJECT DURABLE TWILIO_URL START_ISO
Consumes until killed (or SIGTERM), in small batches so a kill lands mid-stream; its clock starts
at START_ISO, so the policy's quiet hours do not depend on when the suite runs."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from channels.twilio_sms import TwilioSMS
from outreach.config import Settings
from outreach.live.jetstream import DEFAULT_URL, StreamNames
from outreach.live.runner import open_consumer, run_until_stopped
from tests.fixture_files import OFFERS_FILE
from tests.provider_fakes import SENDER

REPO = Path(__file__).resolve().parent.parent


async def main(db_url: str, stream: str, subject: str, durable: str, twilio_url: str, start: str) -> None:
    began, at = time.monotonic(), datetime.fromisoformat(start)
    settings = Settings(
        database_url=db_url,
        offers_file=OFFERS_FILE,
        templates_dir=REPO / "templates",
        _env_file=None,
    )
    sms = TwilioSMS(
        "AC" + "0" * 32, "test-auth-token", from_=SENDER, api_url=twilio_url, timeout=2, sleep=lambda s: None
    )
    consumer = await open_consumer(
        settings,
        DEFAULT_URL,
        StreamNames(stream, subject, durable),
        channels={"sms": sms},
        clock=lambda: at + timedelta(seconds=time.monotonic() - began),
        batch_events=20,
        batch_seconds=0.05,
        ack_wait=2.0,
    )
    consumer.sweep_seconds = 0.5
    print("ready", flush=True)
    await run_until_stopped(consumer)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
