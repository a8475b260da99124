"""Letter channel: one ReportLab PDF per letter in the day's print folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from channels.base import BatchOutcome, OutboundMessage, SendResult


class PdfLetterChannel:
    kind: ClassVar[str] = "letter"
    provider: ClassVar[str] = "pdf"

    def __init__(self, outbox_dir: str | Path = "outbox", **_: object) -> None:
        self.root = Path(outbox_dir)

    def send_batch(self, messages: Sequence[OutboundMessage]) -> BatchOutcome:
        outcome = BatchOutcome()
        for message in messages:
            folder = self.root / message.run_date.isoformat() / "letter"
            folder.mkdir(parents=True, exist_ok=True)
            try:
                render_letter(message, folder / f"{message.message_id}.pdf")
            except OSError as exc:
                outcome.errors[message.message_id] = exc
            else:
                outcome.results[message.message_id] = SendResult(message.message_id, message.message_id)
        return outcome

    def close(self) -> None:
        pass


def render_letter(message: OutboundMessage, path: Path) -> None:
    """A plain A4 letter: address in a DIN 5008 window, then the body (invariant: reproducible)."""
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    width, height = A4
    text = pdf.beginText(20 * mm, height - 50 * mm)
    text.setFont("Helvetica", 10)
    for line in message.address.lines() if message.address else []:
        text.textLine(line)
    pdf.drawText(text)
    body = pdf.beginText(25 * mm, height - 110 * mm)
    body.setFont("Helvetica", 10)
    for line in message.body.splitlines():
        body.textLine(line)
    pdf.drawText(body)
    pdf.showPage()
    pdf.save()
