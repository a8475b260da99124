"""A dispatch worker in its own process (for the SIGKILL and two-worker tests):
python -m tests.dispatch_worker DB_URL CHANNEL PROVIDER_URL RUN_DATE WORKER BATCH_SIZE
Prints its DispatchReport as JSON when it finishes."""

from __future__ import annotations

import json
import sys
from datetime import date

from channels.sendgrid_email import SendGridEmail
from channels.twilio_sms import TwilioSMS
from outreach.config import Settings, load_offers
from outreach.db import make_engine
from outreach.dispatch import Dispatcher
from outreach.sending import send_due
from tests.fixture_files import OFFERS_FILE
from tests.provider_fakes import SENDER


def channel_for(kind: str, url: str):
    if kind == "sms":
        return TwilioSMS(
            "AC" + "0" * 32,
            "test-auth-token",
            from_=SENDER,
            api_url=url,
            timeout=2,
            concurrency=4,
            max_attempts=3,
            sleep=lambda s: None,
        )
    return SendGridEmail(
        "SG.test-key",
        "aanbod@bank.example",
        api_url=url,
        timeout=5,
        max_attempts=3,
        chunk_size=25,
        sleep=lambda s: None,
    )


def main(db_url: str, kind: str, url: str, run_date: str, worker: str, batch_size: str) -> None:
    engine = make_engine(db_url)
    channel = channel_for(kind, url)
    dispatcher = Dispatcher(engine, Settings(database_url=db_url), load_offers(OFFERS_FILE), channel, worker)
    report, _ = send_due(dispatcher, date.fromisoformat(run_date), batch_size=int(batch_size), at=None)
    channel.close()
    print(json.dumps(vars(report)))


if __name__ == "__main__":
    main(*sys.argv[1:])
