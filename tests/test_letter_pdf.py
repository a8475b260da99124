"""Print-ready letters, read back with pypdf: text, pages, embedded fonts, the window, reproducibility."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import date
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth

from channels.base import Address, OutboundMessage
from channels.errors import ConfigurationError, RecipientRejected
from channels.letter_pdf import FONT, INDEX_COLUMNS, PdfLetterChannel, Window, render_letter
from outreach.channel_setup import open_channel
from outreach.config import Settings, load_offers
from outreach.rendering import Renderer, message_context
from tests.fixture_files import OFFERS_FILE

REPO = Path(__file__).resolve().parent.parent
PAGE_HEIGHT = 297 * mm
ADDRESS = Address("Zoë de Vries-Ëmmerik", "Kerkstraat", "12 bis", "1234 AB", "Den Haag")


def letter(body: str | None = None, **overrides) -> OutboundMessage:
    if body is None:
        offer = load_offers(OFFERS_FILE).by_code()["SAVINGS_BOOST"]
        ctx = message_context(
            {"customer_id": "C000042", "first_name": "Zoë", "last_name": "de Vries-Ëmmerik"},
            offer,
            {"trigger": "large_balance", "trigger_ref": "TX1", "score": 0.9, "amount": "12500.50"},
            date(2019, 6, 3),
            None,
        )
        rendered = Renderer(REPO / "templates").render("letter", "savings_boost", "nl", ctx)
        body, overrides = rendered.body, {"subject": rendered.subject, **overrides}
    fields = dict(
        message_id="4711",
        channel="letter",
        customer_id="C000042",
        offer_code="SAVINGS_BOOST",
        run_date=date(2019, 6, 3),
        to="C000042",
        body=body,
        subject="Meer rente op uw spaargeld",
        language="nl",
        address=ADDRESS,
    )
    fields.update(overrides)
    return OutboundMessage(**fields)


def positions(page) -> list[tuple[float, float, str, float]]:
    """(x, y from the top in mm, text, font size) of every text run on the page."""
    found = []

    def visit(text, cm, tm, _font, size):
        if text.strip():
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            found.append((x / mm, (PAGE_HEIGHT - y) / mm, text.strip(), size))

    page.extract_text(visitor_text=visit)
    return found


def read(data: bytes) -> PdfReader:
    return PdfReader(BytesIO(data))


def test_text_page_count_and_dutch_characters():
    data, pages = render_letter(letter())
    reader = read(data)
    assert pages == len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    for expected in (
        "Zoë de Vries-Ëmmerik",
        "Meer rente op uw spaargeld",
        "Beste Zoë,",
        "€ 12.500,50",  # Babel, nl-NL (a no-break space comes back as a space)
        "3 juni 2019",
        "Ons kenmerk",
        "4711",
        "IBAN NL21 VBNK 0123 4567 89",
        "Geen aanbiedingen meer per post?",
    ):
        assert expected in text.replace("\u00a0", " "), expected
    assert "Pagina" not in text  # a one-page letter has no page numbers


def test_fonts_are_embedded_truetype_subsets():
    reader = read(render_letter(letter())[0])
    fonts = reader.pages[0]["/Resources"]["/Font"]
    assert fonts, "no fonts on the page"
    for ref in fonts.values():
        font = ref.get_object()
        assert font["/Subtype"] == "/TrueType"
        assert "DejaVuSans" in font["/BaseFont"]
        descriptor = font["/FontDescriptor"].get_object()
        assert descriptor["/FontFile2"].get_object().get_data()[:4] == b"\x00\x01\x00\x00"  # a TrueType file
        assert font.get("/ToUnicode") is not None


def _assert_address_inside(page, window: Window, lines: list[str]) -> None:
    runs = {text: (x, y, size) for x, y, text, size in positions(page)}
    zone_top, bottom = window.top + window.return_zone, window.top + window.height
    for line in lines:
        assert line in runs, f"{line!r} not found on the page"
        x, baseline, size = runs[line]
        ascent, descent = 0.76 * size / mm * 1.0, 0.24 * size / mm
        width = stringWidth(line, FONT, size) / mm
        assert window.left <= x and x + width <= window.left + window.width, (line, x, width)
        assert zone_top <= baseline - ascent and baseline + descent <= bottom, (line, baseline)
    # the return address sits in the upper band of the window
    x, baseline, _ = next(
        (x, y, s) for x, y, t, s in positions(page) if t.startswith("Voorbeeldbank · Postbus")
    )
    assert window.left <= x and window.top <= baseline <= zone_top


def test_address_lies_inside_the_din_5008_window():
    reader = read(render_letter(letter())[0])
    _assert_address_inside(
        reader.pages[0], Window(), ["Zoë de Vries-Ëmmerik", "Kerkstraat 12 bis", "1234 AB  DEN HAAG"]
    )


def test_window_is_configurable_in_mm(tmp_path, monkeypatch):
    window = Window.parse("25,50,90,45")
    reader = read(render_letter(letter(), window)[0])
    _assert_address_inside(reader.pages[0], window, ["Kerkstraat 12 bis"])
    x, y, _, _ = next(run for run in positions(reader.pages[0]) if run[2] == "Kerkstraat 12 bis")
    assert x == pytest.approx(30, abs=0.1)  # 5 mm inside the window's left edge
    # the channel takes the window as an option; OUTREACH_LETTER_WINDOW_MM reaches it through the settings
    monkeypatch.setenv("OUTREACH_LETTER_WINDOW_MM", "25,50,90,45")
    assert open_channel(Settings(outbox_dir=tmp_path), "letter").window == window
    assert PdfLetterChannel(tmp_path).window == Window.parse(None)  # the default (DIN 5008 B), no env
    assert PdfLetterChannel(tmp_path, window_mm="20,27,85,45").window.top == 27  # DIN 5008 form A
    with pytest.raises(ConfigurationError, match="left,top,width,height"):
        Window.parse("20;45")
    with pytest.raises(ConfigurationError):
        Window.parse("100,45,85,45")


def test_foreign_address_gets_a_country_line_and_a_long_name_shrinks_to_fit():
    name = "Maximiliaan-Alexander van den Berg-Oosterhuis"
    address = Address(name, "Rue de la Loi", "16", "1000", "Bruxelles", "BE")
    reader = read(render_letter(letter(address=address))[0])
    _assert_address_inside(reader.pages[0], Window(), [name, "1000  BRUXELLES", "BELGIË"])
    size = next(s for _, _, t, s in positions(reader.pages[0]) if t == name)
    assert 8 <= size < 10


def test_a_very_long_name_wraps_inside_the_window_and_nothing_is_cut():
    name = "Maximiliaan-Alexander Constantijn van den Berg-Oosterhuis tot Nijenrode"
    reader = read(render_letter(letter(address=Address(name, "Kerkstraat", "1", "1234 AB", "Utrecht")))[0])
    in_window = [t for x, y, t, s in positions(reader.pages[0]) if 62.7 < y < 90 and x < 105]
    assert " ".join(in_window[:2]) == name
    _assert_address_inside(reader.pages[0], Window(), [*in_window[:2], "Kerkstraat 1", "1234 AB  UTRECHT"])


def test_an_address_that_cannot_fit_is_rejected_not_cut():
    address = Address("Anne", "Kerkstraat", "1", "1234 AB", "Sint-" + "X" * 80)
    with pytest.raises(RecipientRejected, match="too long"):
        render_letter(letter(address=address))
    with pytest.raises(RecipientRejected, match="without an address"):
        render_letter(letter(address=None))


def test_long_letter_gets_page_numbers_and_the_address_only_on_page_one():
    paragraph = "Dit is een lange alinea over sparen, beleggen en de toekomst van uw kind. " * 8
    data, pages = render_letter(letter("Beste Zoë,\n\n" + "\n\n".join([paragraph] * 12)))
    reader = read(data)
    assert pages == len(reader.pages) >= 3
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert f"Pagina {number} van {pages}" in text
        assert "Geen aanbiedingen meer per post?" in text  # the footer is on every page
        assert ("Kerkstraat 12 bis" in text) == (number == 1)
        assert ("Klantnummer" in text) == (number == 1)
    assert "Ons kenmerk 4711" in reader.pages[1].extract_text()


def test_english_labels_and_date():
    text = read(render_letter(letter(language="en"))[0]).pages[0].extract_text()
    assert "Our reference" in text and "3 June 2019" in text and "No more offers by post?" in text


def test_metadata_reference_and_date_override():
    message = letter(metadata={"reference": "KS-2019-000042", "date": "1 juli 2019"})
    text = read(render_letter(message)[0]).pages[0].extract_text()
    assert "KS-2019-000042" in text and "1 juli 2019" in text


def test_same_input_gives_identical_bytes_also_in_a_fresh_process():
    first, _ = render_letter(letter())
    assert render_letter(letter())[0] == first
    script = (
        "import sys; sys.path.insert(0, 'tests'); from test_letter_pdf import letter; "
        "from channels.letter_pdf import render_letter; sys.stdout.buffer.write(render_letter(letter())[0])"
    )
    fresh = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, check=True).stdout
    assert fresh == first
    assert render_letter(letter(customer_id="C000043"))[0] != first


def test_channel_writes_pdf_and_index(tmp_path):
    channel = PdfLetterChannel(tmp_path)
    messages = [letter(message_id=str(n), customer_id=f"C{n}") for n in range(3)]
    messages.append(letter(message_id="99", address=None))
    outcome = channel.send_batch(messages)
    assert sorted(outcome.results) == ["0", "1", "2"]
    assert isinstance(outcome.errors["99"], RecipientRejected)
    folder = tmp_path / "2019-06-03" / "letter"
    with (folder / "index.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == INDEX_COLUMNS
    assert [(r["letter_id"], r["customer_id"], r["postal_code"], r["pages"]) for r in rows] == [
        (str(n), f"C{n}", "1234 AB", "1") for n in range(3)
    ]
    import hashlib

    for row in rows:
        assert hashlib.sha256((folder / row["file"]).read_bytes()).hexdigest() == row["sha256"]
    assert not list(folder.glob(".*.tmp"))


def test_no_break_spaces_keep_amounts_and_phone_numbers_on_one_line():
    from channels.letter_pdf import _wrap

    width = stringWidth("Bel ons op 020 123", FONT, 10) + 1
    assert _wrap("Bel ons op 020\u00a0123\u00a045\u00a067", FONT, 10, width) == [
        "Bel ons op",
        "020\u00a0123\u00a045\u00a067",
    ]
    assert _wrap("Bel ons op 020 123 45 67", FONT, 10, width) == ["Bel ons op 020 123", "45 67"]


def test_a_bank_can_use_its_own_logo_image():
    from channels.letter_pdf import Letterhead

    plain = read(render_letter(letter())[0])
    branded = read(
        render_letter(letter(), head=Letterhead(logo_path=REPO / "docs" / "letter-example.png"))[0]
    )

    def images(reader: PdfReader) -> int:
        forms = reader.pages[0]["/Resources"]["/XObject"]
        found = 0
        for ref in forms.values():
            resources = ref.get_object().get("/Resources", {})
            found += len(resources.get("/XObject", {}))
        return found

    assert images(plain) == 0 and images(branded) == 1
