"""Dev backends: write each message to a local outbox folder instead of a provider.

Like Django's file email backend, these are real channels: the pipeline, the ledger and the
tests run through them unchanged. Files land in ``<outbox>/<date>/<kind>/``.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import ClassVar

from channels.base import BaseChannel, BatchOutcome, OutboundMessage, SendResult


class OutboxChannel(BaseChannel):
    kind: ClassVar[str] = ""
    provider: ClassVar[str] = "outbox"

    def __init__(self, outbox_dir: str | Path = "outbox") -> None:
        self.root = Path(outbox_dir)

    def folder(self, message: OutboundMessage) -> Path:
        path = self.root / message.run_date.isoformat() / self.kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    def send_batch(self, messages: Sequence[OutboundMessage]) -> BatchOutcome:
        outcome = BatchOutcome()
        for message in messages:
            try:
                self.write(message)
            except OSError as exc:  # a full disk fails the message, not the batch
                outcome.errors[message.message_id] = exc
            else:
                outcome.results[message.message_id] = SendResult(
                    message.message_id, f"outbox-{message.message_id}"
                )
        return outcome

    def write(self, message: OutboundMessage) -> None:
        raise NotImplementedError


class OutboxSMS(OutboxChannel):
    kind = "sms"

    def write(self, message: OutboundMessage) -> None:
        record = {
            "id": message.message_id,
            "to": message.to,
            "body": message.body,
            "offer": message.offer_code,
        }
        (self.folder(message) / f"{message.message_id}.json").write_text(
            json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8"
        )


class OutboxEmail(OutboxChannel):
    kind = "email"

    def write(self, message: OutboundMessage) -> None:
        mail = EmailMessage()
        mail["To"] = message.to
        mail["Subject"] = message.subject or ""
        mail["X-Outreach-Message-Id"] = message.message_id
        if message.unsubscribe_url:
            mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(message.body)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        (self.folder(message) / f"{message.message_id}.eml").write_bytes(bytes(mail))


class OutboxCallList(OutboxChannel):
    """Appends call tasks to the day's call list CSV (the call-centre pages read the ledger)."""

    kind = "call"
    _lock = threading.Lock()
    columns = ("message_id", "customer_id", "offer_code", "phone", "language", "script")

    def write(self, message: OutboundMessage) -> None:
        path = self.folder(message) / "call-list.csv"
        with self._lock:
            new = not path.exists()
            with path.open("a", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                if new:
                    writer.writerow(self.columns)
                writer.writerow(
                    [
                        message.message_id,
                        message.customer_id,
                        message.offer_code,
                        message.to,
                        message.language,
                        message.body,
                    ]
                )
