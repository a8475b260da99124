"""Letter channel: one print-ready A4 PDF per letter, and a day index the print batches are built from.

Page layout, in mm from the top-left corner (DIN 5008 form B unless configured otherwise):

- letterhead: logo and bank name top left, contact block top right, fold and punch marks; drawn
  once per document as a Form XObject (likewise the running head of later pages and the footer)
- address window: 20 mm from the left, 45 mm from the top, 85 x 45 mm. Set another envelope with
  ``window_mm="left,top,width,height"`` (settings: ``OUTREACH_LETTER_WINDOW_MM``). The top 17.7 mm hold the
  return address in 7 pt; the recipient (up to 6 lines, 10 pt, shrunk to 8 pt if a line is long)
  goes below. Page 1 only.
- info block right of the window: date, reference, customer number, phone
- subject line in bold, then the body from the template (blank line = new paragraph, "- " = bullet)
- footer on every page: bank details and how to opt out; "Pagina 1 van 2" when there are more pages

Text is set in DejaVu Sans, shipped in ``channels/assets/fonts`` and embedded (subset), so ë, é,
ï, ü, ł, ş and € print on any machine. ``invariant=1``: the same message gives the same bytes.

What the letter reads from the OutboundMessage: ``message_id`` (letter id and file name),
``customer_id``, ``run_date``, ``address``, ``body``, ``subject`` (the subject line; optional),
``language`` (labels and date format: nl or en), and these optional ``metadata`` keys:

- ``reference``: the "Ons kenmerk" value (default: the message id)
- ``date``: the letter date, already formatted (default: ``run_date`` in the long form of the language)

Each written letter is appended to ``<outbox>/<date>/letter/index.csv`` (``INDEX_COLUMNS``) under
a file lock, so several processes may write the same day; ``outreach.printing`` reads it.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache
from pathlib import Path
from typing import ClassVar

from babel.dates import format_date
from reportlab.lib.colors import HexColor
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import FF_NONSYMBOLIC, FF_SYMBOLIC, TTFont, TTFontFace, makeToUnicodeCMap
from reportlab.pdfgen import canvas

from channels.base import Address, BaseChannel, BatchOutcome, OutboundMessage, SendResult
from channels.errors import ConfigurationError, RecipientRejected, TransientError

ASSETS = Path(__file__).resolve().parent / "assets"
FONT, FONT_BOLD = "DejaVuSans", "DejaVuSans-Bold"
INDEX_NAME = "index.csv"
INDEX_COLUMNS = ("letter_id", "customer_id", "postal_code", "country", "pages", "sha256", "file")
PAGE_WIDTH, PAGE_HEIGHT = A4

INK = HexColor("#1d1d1b")
GREY = HexColor("#6b6b6b")
LABELS = {
    "nl": {
        "date": "Datum",
        "reference": "Ons kenmerk",
        "customer": "Klantnummer",
        "contact": "Vragen?",
        "page": "Pagina {page} van {pages}",
    },
    "en": {
        "date": "Date",
        "reference": "Our reference",
        "customer": "Customer number",
        "contact": "Questions?",
        "page": "Page {page} of {pages}",
    },
}
COUNTRIES = {"BE": "BELGIË", "DE": "DUITSLAND", "FR": "FRANKRIJK", "GB": "VERENIGD KONINKRIJK"}


class _SubsetCachingFace(TTFontFace):
    """Embeds font subsets made and compressed once per process, not once per letter.

    Cutting and compressing a TrueType subset is about half the work of a one-page letter. A
    letter's subset is made deterministic (``_warm_fonts``: characters in sorted order), so
    letters with the same characters share it; the cache is keyed by the subset itself.
    """

    @lru_cache(maxsize=512)  # noqa: B019 - one face per font per process, kept for the process
    def _compressed_subset(self, subset: tuple[int, ...]) -> tuple[int, bytes]:
        raw = self.makeSubset(list(subset))
        return len(raw), zlib.compress(raw)

    def addSubsetObjects(self, doc, fontname, subset):  # noqa: N802 - ReportLab's name
        length, compressed = self._compressed_subset(tuple(subset))
        stream = pdfdoc.PDFStream(content=compressed)
        stream.dictionary["Length1"] = length
        stream.dictionary["Filter"] = pdfdoc.PDFArray([pdfdoc.PDFName("FlateDecode")])  # already applied
        stream_ref = doc.Reference(stream, f"fontFile:{self.filename}({fontname})")
        descriptor = pdfdoc.PDFDictionary(
            {
                "Type": "/FontDescriptor",
                "Ascent": self.ascent,
                "CapHeight": self.capHeight,
                "Descent": self.descent,
                "Flags": (self.flags & ~FF_NONSYMBOLIC) | FF_SYMBOLIC,
                "FontBBox": pdfdoc.PDFArray(self.bbox),
                "FontName": pdfdoc.PDFName(fontname),
                "ItalicAngle": self.italicAngle,
                "StemV": self.stemV,
                "FontFile2": stream_ref,
                "MissingWidth": self.defaultWidth,
            }
        )
        return doc.Reference(descriptor, "fontDescriptor:" + fontname)


class _Preformatted(pdfdoc.PDFObject):
    """A PDF object whose bytes were formatted once (a font's widths are the same in every letter)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def format(self, document) -> bytes:
        return self.data


class _CachingTTFont(TTFont):
    """After ReportLab has added a subset's font objects, swap in widths and ToUnicode map that
    were formatted and compressed once per process: the same subsets recur letter after letter."""

    @lru_cache(maxsize=512)  # noqa: B019 - one instance per font, kept for the process
    def _formatted(self, subset: tuple[int, ...], base_font: str) -> tuple[bytes, bytes]:
        widths = pdfdoc.format(pdfdoc.PDFArray([self.face.getCharWidth(c) for c in subset]), None)
        return widths, zlib.compress(makeToUnicodeCMap(base_font, list(subset)).encode("utf-8"))

    def addObjects(self, doc) -> None:  # noqa: N802 - ReportLab's name
        state = self.state.get(doc)
        subsets = [tuple(s) for s in state.subsets] if state else []
        internal = state.internalName if state else None
        super().addObjects(doc)
        if not doc.compression or internal is None:
            return
        fonts = doc.idToObject["BasicFonts"].dict
        for n, subset in enumerate(subsets):
            font = fonts[f"{internal}+{n}"]
            widths, cmap = self._formatted(subset, font.BaseFont)
            font.Widths = _Preformatted(widths)
            stream = doc.idToObject["toUnicodeCMap:" + font.BaseFont]
            stream.content, stream.filters = cmap, None
            stream.dictionary["Filter"] = pdfdoc.PDFArray([pdfdoc.PDFName("FlateDecode")])


@cache
def register_fonts() -> None:
    """Font registration is process-wide in ReportLab: do it once."""
    for name, file in ((FONT, "DejaVuSans.ttf"), (FONT_BOLD, "DejaVuSans-Bold.ttf")):
        font = _CachingTTFont(name, str(ASSETS / "fonts" / file))
        font.face = _SubsetCachingFace(str(ASSETS / "fonts" / file))
        pdfmetrics.registerFont(font)


def _warm_fonts(pdf: canvas.Canvas, regular: str, bold: str) -> None:
    """Assign the letter's non-ASCII characters subset codes in sorted order, before drawing, so
    the subset depends on which characters a letter uses, not on the order they first appear."""
    for name, text in ((FONT, regular), (FONT_BOLD, bold)):
        extra = "".join(sorted({c for c in text if ord(c) > 127}))
        if extra:
            pdfmetrics.getFont(name).splitString(extra, pdf._doc)


@dataclass(frozen=True, slots=True)
class Window:
    """The envelope window, in mm from the page's top-left corner."""

    left: float = 20.0
    top: float = 45.0
    width: float = 85.0
    height: float = 45.0
    return_zone: float = 17.7  # the upper band for the return address (DIN 5008)

    @classmethod
    def parse(cls, spec: str | Sequence[float] | Window | None) -> Window:
        if spec is None or isinstance(spec, Window):
            return spec or cls()
        try:
            values = [float(v) for v in (spec.split(",") if isinstance(spec, str) else spec)]
            window = cls(*values)
        except (TypeError, ValueError) as exc:
            expected = "expected 'left,top,width,height' in mm"
            raise ConfigurationError(f"letter window {spec!r}: {expected}") from exc
        if len(values) < 4 or min(values) <= 0:
            raise ConfigurationError(f"letter window {spec!r}: need four positive numbers (mm)")
        if window.left + window.width > 120 or window.top + window.height > 120:
            raise ConfigurationError(f"letter window {spec!r}: must end left of 120 mm and above 120 mm")
        if window.height - window.return_zone < 26:
            raise ConfigurationError(f"letter window {spec!r}: too low for six address lines")
        return window


@dataclass(frozen=True, slots=True)
class Letterhead:
    """The bank's identity on paper. Override for a real bank (logo_path: a PNG or JPEG)."""

    name: str = "Voorbeeldbank"
    legal_name: str = "Voorbeeldbank N.V."
    return_address: str = "Voorbeeldbank · Postbus 1234 · 1000 AB Amsterdam"
    contact: tuple[str, ...] = ("Postbus 1234", "1000 AB Amsterdam", "020 123 45 67", "voorbeeldbank.nl")
    phone: str = "020 123 45 67"
    details: tuple[str, ...] = (
        "Voorbeeldbank N.V. · Postbus 1234, 1000 AB Amsterdam · KvK 12345678 · BTW NL001234567B01",
        "IBAN NL21 VBNK 0123 4567 89 · BIC VBNKNL2A · Onder toezicht van De Nederlandsche Bank en de AFM",
    )
    optout: Mapping[str, str] = field(
        default_factory=lambda: {
            "nl": "Geen aanbiedingen meer per post? Meld u af op voorbeeldbank.nl/afmelden, "
            "in de app of bel 020 123 45 67.",
            "en": "No more offers by post? Opt out at voorbeeldbank.nl/afmelden, "
            "in the app or call 020 123 45 67.",
        }
    )
    color: str = "#0b5563"
    logo_path: Path | None = None


class PdfLetterChannel(BaseChannel):
    kind: ClassVar[str] = "letter"
    provider: ClassVar[str] = "pdf"

    def __init__(
        self,
        outbox_dir: str | Path = "outbox",
        window_mm: str | Sequence[float] | None = None,
        letterhead: Letterhead | None = None,
    ) -> None:
        self.root = Path(outbox_dir)
        self.window = Window.parse(window_mm or None)
        self.letterhead = letterhead or Letterhead()
        register_fonts()

    def send_batch(self, messages: Sequence[OutboundMessage]) -> BatchOutcome:
        outcome = BatchOutcome()
        rows: dict[Path, list[list[str]]] = {}
        for message in messages:
            folder = self.root / message.run_date.isoformat() / "letter"
            try:
                pdf, pages = render_letter(message, self.window, self.letterhead)
                folder.mkdir(parents=True, exist_ok=True)
                _write_atomic(folder / f"{message.message_id}.pdf", pdf)
            except RecipientRejected as exc:
                outcome.errors[message.message_id] = exc
                continue
            except OSError as exc:  # a full disk: another attempt may well succeed
                outcome.errors[message.message_id] = TransientError(f"cannot write letter: {exc}")
                continue
            address = message.address
            rows.setdefault(folder, []).append(
                [
                    message.message_id,
                    message.customer_id,
                    address.postal_code if address else "",
                    address.country if address else "",
                    str(pages),
                    hashlib.sha256(pdf).hexdigest(),
                    f"{message.message_id}.pdf",
                ]
            )
            outcome.results[message.message_id] = SendResult(message.message_id, message.message_id)
        for folder, batch in rows.items():
            try:
                append_index(folder / INDEX_NAME, batch)
            except OSError as exc:
                for row in batch:
                    del outcome.results[row[0]]
                    outcome.errors[row[0]] = TransientError(f"cannot record letter in index: {exc}")
        return outcome

    def close(self) -> None:
        pass


def _write_atomic(path: Path, data: bytes) -> None:
    """Never leave half a PDF behind: write a sibling file, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def append_index(path: Path, rows: Sequence[Sequence[str]]) -> None:
    """Append rows to the day's letter index; an exclusive lock keeps parallel writers' lines whole."""
    with path.open("a+", newline="", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0, os.SEEK_END)
            writer = csv.writer(handle)
            if handle.tell() == 0:
                writer.writerow(INDEX_COLUMNS)
            writer.writerows(rows)
            handle.flush()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# layout


def _y(from_top_mm: float) -> float:
    return PAGE_HEIGHT - from_top_mm * mm


LEFT = 25 * mm  # DIN 5008 text margin
RIGHT = PAGE_WIDTH - 20 * mm
INFO_X = 125 * mm
BODY_SIZE, BODY_LEADING = 10, 14.5
BODY_BOTTOM = _y(264)  # keep clear of the page number and footer
LATER_TOP = _y(38)
ADDRESS_SIZE, ADDRESS_MIN_SIZE, ADDRESS_WRAP_SIZE = 10, 8, 9
ADDRESS_LEADING = 4.2 * mm


def _address_lines(address: Address | None) -> list[str]:
    if address is None:
        raise RecipientRejected("letter without an address", code="address_missing")
    lines = [line.strip() for line in address.lines() if line and line.strip()]
    if address.country and address.country.upper() != "NL":
        lines.append(COUNTRIES.get(address.country.upper(), address.country.upper()))
    if len(lines) < 3:
        raise RecipientRejected("incomplete address", code="address_incomplete")
    return lines


def _fit_address(lines: list[str], window: Window) -> tuple[list[str], float]:
    """Lines and font size that fit the window: 10 pt, shrunk to 8 pt, else long lines wrapped at
    9 pt; never cut. An address that still does not fit is rejected (``address_too_long``)."""
    room = (window.width - 10) * mm  # 5 mm clear of each window edge
    widest = max(pdfmetrics.stringWidth(line, FONT, ADDRESS_SIZE) for line in lines)
    size = ADDRESS_SIZE if widest <= room else ADDRESS_SIZE * room / widest
    if size < ADDRESS_MIN_SIZE:
        size = ADDRESS_WRAP_SIZE
        lines = [
            part
            for line in lines
            for part in (
                simpleSplit(line, FONT, size, room)
                if pdfmetrics.stringWidth(line, FONT, size) > room
                else [line]
            )
        ]
        if any(pdfmetrics.stringWidth(line, FONT, size) > room for line in lines):
            raise RecipientRejected("address line too long for the envelope window", code="address_too_long")
    if len(lines) > 6:
        raise RecipientRejected("address needs more than 6 lines in the window", code="address_too_long")
    return lines, (round(size, 2) if size < ADDRESS_SIZE else size)


@dataclass(slots=True)
class _Line:
    text: str
    x: float
    font: str = FONT
    bullet: bool = False


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy line breaking at ordinary spaces only: a no-break space (Babel puts one between € and
    the amount; phone numbers may carry them) keeps its neighbours on one line."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and pdfmetrics.stringWidth(candidate, font, size) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    lines.append(current)
    return lines


def _layout_body(subject: str | None, body: str, first_top: float) -> list[list[tuple[float, _Line]]]:
    """Wrap the body to the text width and cut it into pages of (baseline y, line)."""
    width = RIGHT - LEFT
    indent = 5 * mm
    items: list[_Line | None] = []  # None = paragraph gap
    if subject:
        items += [_Line(t, LEFT, FONT_BOLD) for t in _wrap(subject, FONT_BOLD, BODY_SIZE, width)]
        items.append(None)
    for raw in body.strip().splitlines():
        text = raw.rstrip()
        if not text.strip():
            if items and items[-1] is not None:
                items.append(None)
            continue
        if text.lstrip().startswith(("- ", "• ")):
            parts = _wrap(text.lstrip()[2:].strip(), FONT, BODY_SIZE, width - indent)
            items += [_Line(t, LEFT + indent, bullet=i == 0) for i, t in enumerate(parts)]
        else:
            items += [_Line(t, LEFT) for t in _wrap(text, FONT, BODY_SIZE, width)]
    pages: list[list[tuple[float, _Line]]] = [[]]
    y = first_top
    for item in items:
        if item is None:
            y -= BODY_LEADING * 0.7
            continue
        if y < BODY_BOTTOM:
            pages.append([])
            y = LATER_TOP
        pages[-1].append((y, item))
        y -= BODY_LEADING
    return pages


# ---------------------------------------------------------------------------------------------
# drawing


def _logo(pdf: canvas.Canvas, head: Letterhead, x: float, top: float, size: float) -> None:
    """The bank's mark: a rounded square with three rising bars (or the configured image)."""
    if head.logo_path:
        pdf.drawImage(ImageReader(str(head.logo_path)), x, top - size, size, size, mask="auto")
        return
    pdf.setFillColor(HexColor(head.color))
    pdf.roundRect(x, top - size, size, size, size * 0.22, stroke=0, fill=1)
    pdf.setFillColor(HexColor("#ffffff"))
    bar = size * 0.14
    for i, height in enumerate((0.30, 0.46, 0.62)):
        pdf.rect(x + size * (0.2 + i * 0.23), top - size * 0.8, bar, size * height, stroke=0, fill=1)


def _letterhead_form(pdf: canvas.Canvas, head: Letterhead, window: Window) -> None:
    pdf.beginForm("letterhead")
    _logo(pdf, head, LEFT, _y(12), 13 * mm)
    pdf.setFillColor(HexColor(head.color))
    pdf.setFont(FONT_BOLD, 19)
    pdf.drawString(LEFT + 16 * mm, _y(21.2), head.name)
    pdf.setFillColor(GREY)
    pdf.setFont(FONT, 7.5)
    for i, line in enumerate(head.contact):
        pdf.drawRightString(RIGHT, _y(13.5 + i * 3.4), line)
    # fold marks (DIN 5008 form B: 105 and 210 mm) and the punch mark at half height
    pdf.setStrokeColor(GREY)
    pdf.setLineWidth(0.3)
    for at, length in ((105, 5), (210, 5), (148.5, 7)):
        pdf.line(4 * mm, _y(at), (4 + length) * mm, _y(at))
    # return address: the last line of the window's upper band, underlined
    x = (window.left + 5) * mm
    baseline = _y(window.top + window.return_zone - 1.6)
    pdf.setFont(FONT, 7)
    pdf.drawString(x, baseline, head.return_address)
    width = pdfmetrics.stringWidth(head.return_address, FONT, 7)
    pdf.line(x, baseline - 1.2, x + width, baseline - 1.2)
    pdf.endForm()


def _running_head_form(pdf: canvas.Canvas, head: Letterhead) -> None:
    pdf.beginForm("runninghead")
    _logo(pdf, head, LEFT, _y(12), 8 * mm)
    pdf.setFillColor(HexColor(head.color))
    pdf.setFont(FONT_BOLD, 12)
    pdf.drawString(LEFT + 10.5 * mm, _y(17.8), head.name)
    pdf.endForm()


def _footer_form(pdf: canvas.Canvas, head: Letterhead, language: str) -> str:
    name = f"footer_{language}"
    pdf.beginForm(name)
    pdf.setStrokeColor(HexColor(head.color))
    pdf.setLineWidth(0.6)
    pdf.line(LEFT, _y(274), RIGHT, _y(274))
    pdf.setFillColor(GREY)
    for i, line in enumerate(head.details[:2]):
        _fitted_string(pdf, LEFT, _y(278 + i * 3.3), line, FONT, 6.8)
    pdf.setFillColor(INK)
    _fitted_string(pdf, LEFT, _y(285), head.optout.get(language) or head.optout["nl"], FONT, 7.2)
    pdf.endForm()
    return name


def _fitted_string(pdf: canvas.Canvas, x: float, y: float, text: str, font: str, size: float) -> None:
    """Shrink a one-line text until it fits the text width (a long custom footer stays on paper)."""
    width = pdfmetrics.stringWidth(text, font, size)
    pdf.setFont(font, size * min(1.0, (RIGHT - x) / width) if width else size)
    pdf.drawString(x, y, text)


def render_letter(
    message: OutboundMessage, window: Window | None = None, head: Letterhead | None = None
) -> tuple[bytes, int]:
    """The letter as PDF bytes, and its number of pages."""
    register_fonts()
    window = window or Window()
    head = head or Letterhead()
    language = message.language if message.language in LABELS else "nl"
    labels = LABELS[language]
    address, address_size = _fit_address(_address_lines(message.address), window)
    reference = message.metadata.get("reference") or message.message_id
    when = message.metadata.get("date") or _long_date(message.run_date, language)

    subject_top = _y(max(98.5, window.top + window.height + 8.5))
    pages = _layout_body(message.subject, message.body, subject_top)

    buffer = io.BytesIO()
    pdf = canvas.Canvas(
        buffer, pagesize=A4, invariant=1, pageCompression=1, initialFontName=FONT, initialFontSize=BODY_SIZE
    )
    labels_text = "".join(labels.values()) + "•" + "".join(head.contact) + "".join(head.details)
    regular = "".join(
        [message.body, "".join(address), when, reference, message.customer_id, labels_text, head.phone]
        + [head.return_address, head.optout.get(language, "")]
    )
    _warm_fonts(pdf, regular, (message.subject or "") + head.name)
    pdf.setTitle(f"{head.name} {reference}")
    pdf.setAuthor(head.legal_name)
    pdf.setCreator("Outreach")
    _letterhead_form(pdf, head, window)
    footer = _footer_form(pdf, head, language)
    if len(pages) > 1:
        _running_head_form(pdf, head)

    for number, lines in enumerate(pages, start=1):
        if number == 1:
            pdf.doForm("letterhead")
            _draw_address(pdf, address, address_size, window)
            _draw_info(pdf, labels, head, when, reference, message.customer_id, window)
        else:
            pdf.doForm("runninghead")
            pdf.setFont(FONT, 7.5)
            pdf.setFillColor(GREY)
            pdf.drawRightString(RIGHT, _y(17.8), f"{labels['reference']} {reference}")
        pdf.doForm(footer)
        if len(pages) > 1:
            pdf.setFont(FONT, 7.5)
            pdf.setFillColor(GREY)
            pdf.drawRightString(RIGHT, _y(270), labels["page"].format(page=number, pages=len(pages)))
        _draw_lines(pdf, lines)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue(), len(pages)


def _long_date(day: date, language: str) -> str:
    return format_date(day, "long", locale={"nl": "nl_NL", "en": "en_GB"}[language])


def _draw_address(pdf: canvas.Canvas, lines: list[str], size: float, window: Window) -> None:
    text = pdf.beginText((window.left + 5) * mm, _y(window.top + window.return_zone + 4.2))
    text.setFont(FONT, size, ADDRESS_LEADING)
    text.setFillColor(INK)
    for line in lines:
        text.textLine(line)
    pdf.drawText(text)


def _draw_info(
    pdf: canvas.Canvas,
    labels: Mapping[str, str],
    head: Letterhead,
    when: str,
    reference: str,
    customer_id: str,
    window: Window,
) -> None:
    top = window.top + 5
    rows = (
        (labels["date"], when),
        (labels["reference"], reference),
        (labels["customer"], customer_id),
        (labels["contact"], head.phone),
    )
    for i, (label, value) in enumerate(rows):
        pdf.setFont(FONT, 7)
        pdf.setFillColor(GREY)
        pdf.drawString(INFO_X, _y(top + i * 8.5), label)
        pdf.setFont(FONT, 9)
        pdf.setFillColor(INK)
        pdf.drawString(INFO_X, _y(top + i * 8.5 + 3.8), value)


def _draw_lines(pdf: canvas.Canvas, lines: list[tuple[float, _Line]]) -> None:
    """The body in one text object (one per line would cost a third more time)."""
    text = pdf.beginText()
    text.setFillColor(INK)
    font = None
    for y, line in lines:
        if line.font != font:
            font = line.font
            text.setFont(font, BODY_SIZE)
        if line.bullet:
            text.setTextOrigin(line.x - 4 * mm, y)
            text.textOut("•")
        text.setTextOrigin(line.x, y)
        text.textOut(line.text)
    pdf.drawText(text)
