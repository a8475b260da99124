"""`outreach templates check`: render every template of every offer in every language against
sample customers, and name file and line of whatever would go wrong in front of a customer.

Errors (the check fails): a template that does not render (undefined variable, bad filter input,
syntax), a missing nl template for a channel the offer uses, a missing part (an email without a
plain-text part, subject or HTML; a letter without subject), an empty text, an SMS over the segment
limit, a message without its opt-out ("STOP" in an SMS, the unsubscribe link in both parts of an
email, an opt-out sentence in a letter, a spoken notice in a call script), a message that does not
say it is based on the customer's payments or how to object to all marketing at once (TRANSPARENCY;
in an SMS the all-marketing keyword STOPALL).
Warnings: a language that falls back to nl, a template no offer uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from outreach.config import Offer, OffersFile
from outreach.rendering import (
    FALLBACK_LANGUAGE,
    LANGUAGES,
    PARTS,
    Rendered,
    Renderer,
    TemplateError,
    display_path,
    message_context,
)
from outreach.sms_segments import SegmentCount, count_segments

CHANNELS = tuple(PARTS)
SAMPLE_UNSUBSCRIBE_URL = "https://outreach.example/u/SAMPLE-TOKEN-0123456789abcdef"
SAMPLE_RUN_DATE = date(2019, 6, 3)
# short and long names, GSM-7 and not (ë, ł, á force UCS-2 and so shrink an SMS segment to 70)
SAMPLE_CUSTOMERS: tuple[dict[str, str], ...] = (
    {"customer_id": "SAMPLE-1", "first_name": "Zoë", "last_name": "de Vries", "language": "nl"},
    {
        "customer_id": "SAMPLE-2",
        "first_name": "Maximiliaan-Alexander",
        "last_name": "van den Berg-Oosterhuis",
        "language": "en",
    },
    {"customer_id": "SAMPLE-3", "first_name": "Łukasz", "last_name": "Wiśniewski", "language": "nl"},
    {
        "customer_id": "SAMPLE-4",
        "first_name": "Siobhán",
        "last_name": "O'Connor-Fitzgerald",
        "language": "en",
    },
)
for _sample in SAMPLE_CUSTOMERS:
    _sample.update(
        street="Kerkstraat", house_number="12", postal_code="1234 AB", city="Den Haag", country="NL"
    )
# with and without the optional amount and date, so both branches of `is defined` get rendered
SAMPLE_TRIGGERS: tuple[dict[str, object], ...] = (
    {
        "trigger": "large_balance",
        "trigger_ref": "TX-SAMPLE-1",
        "score": 0.9,
        "amount": Decimal("25000.00"),
        "date": SAMPLE_RUN_DATE,
    },
    {"trigger": "child_benefit", "trigger_ref": "TX-SAMPLE-2", "score": 0.4},
)
# how each channel tells the customer how to stop, per language (regular expressions, case-insensitive)
OPT_OUT_WORDING: dict[str, dict[str, str]] = {
    "letter": {
        "nl": r"\b(afmelden|meld u af|geen aanbiedingen meer)\b",
        "en": r"\b(opt out|unsubscribe|rather not receive|no more offers)\b",
    },
    "call": {
        "nl": r"\bniet meer (ge)?bel(d|len)\b|\bbezwaar\b",
        "en": r"\bnot (be )?call(ed)?\b|\bobject\b",
    },
}

# what every message must tell the customer (GDPR art. 13/14 and 21(4): at the latest at the first
# communication): why they get it, and that one objection stops all marketing
TRANSPARENCY: dict[str, dict[str, str]] = {
    "based on payments": {"nl": r"\bbetalingen\b", "en": r"\bpayments\b"},
    "how to object to all marketing": {
        "nl": r"\balle reclame\b",
        "en": r"\ball (marketing|offers)\b",
    },
}
SMS_ALL_KEYWORD = "STOPALL"  # outreach.inbound records it as an objection to all marketing


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    message: str
    line: int | None = None
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"


@dataclass(slots=True)
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    renders: int = 0
    templates: set[str] = field(default_factory=set)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, problem: Problem) -> None:
        if problem not in self.problems:  # the same fault shows up once per sample: report it once
            self.problems.append(problem)


def _offer_variants(offer: Offer) -> list[Offer]:
    """The offer as configured and with a validity window, so `offer.valid_until` gets rendered."""
    windowed = offer.model_copy(update={"valid_from": SAMPLE_RUN_DATE, "valid_until": date(2019, 6, 30)})
    return [offer, windowed]


def check_templates(
    templates_dir: str | Path, offers: OffersFile, max_sms_segments: int = 2, also: Iterable[Offer] = ()
) -> CheckReport:
    """``also``: more offers to check, e.g. campaign variants (an offer with other templates)."""
    renderer = Renderer(templates_dir)
    report = CheckReport()
    root = Path(templates_dir)
    if not root.is_dir():
        report.add(Problem(display_path(root), "templates folder not found"))
        return report
    used: set[Path] = set()
    for offer in [*offers.offers, *also]:
        for channel in CHANNELS:
            name = offer.template_for(channel)
            for language in LANGUAGES:
                files = [root / renderer.path(channel, name, language, part) for part in PARTS[channel]]
                used.update(files)
                if not any(f.exists() for f in files):
                    if channel in offer.channels:
                        _report_missing_language(report, renderer, offer, channel, language)
                    continue
                if _report_missing_parts(report, renderer, channel, files):
                    continue
                _check_language(report, renderer, offer, channel, language, max_sms_segments)
    for path in sorted(root.glob("*/*.j2")):
        if not path.name.startswith("_") and path not in used:
            report.add(Problem(display_path(path), "no offer uses this template", severity="warning"))
    return report


def _report_missing_language(
    report: CheckReport, renderer: Renderer, offer: Offer, channel: str, language: str
) -> None:
    expected = display_path(
        renderer.root / renderer.path(channel, offer.template_for(channel), language, "txt")
    )
    if language == FALLBACK_LANGUAGE:
        report.add(Problem(expected, f"offer {offer.code} sends by {channel} but has no {language} template"))
    else:
        report.add(
            Problem(
                expected,
                f"offer {offer.code}: no {language} {channel} template, "
                f"{language} customers get {FALLBACK_LANGUAGE}",
                severity="warning",
            )
        )


def _report_missing_parts(report: CheckReport, renderer: Renderer, channel: str, files: list[Path]) -> bool:
    missing = False
    for part, path in zip(PARTS[channel], files, strict=True):
        if path.exists():
            continue
        missing = True
        what = {
            ("email", "txt"): "email without a plain-text part",
            ("email", "html"): "email without an HTML part",
            ("email", "subject"): "email without a subject",
            ("letter", "subject"): "letter without a subject line",
        }.get((channel, part), f"{channel} template without its {part} part")
        report.add(Problem(display_path(path), what))
    return missing


def _check_language(
    report: CheckReport, renderer: Renderer, offer: Offer, channel: str, language: str, max_segments: int
) -> None:
    name = offer.template_for(channel)
    files = {
        part: display_path(renderer.root / renderer.path(channel, name, language, part))
        for part in PARTS[channel]
    }
    report.templates.update(files.values())
    worst: tuple[SegmentCount, str] | None = None
    for variant in _offer_variants(offer):
        for customer in SAMPLE_CUSTOMERS:
            for trigger in SAMPLE_TRIGGERS:
                context = message_context(customer, variant, trigger, SAMPLE_RUN_DATE, SAMPLE_UNSUBSCRIBE_URL)
                try:
                    rendered = renderer.render(channel, name, language, context)
                except TemplateError as exc:
                    report.add(Problem(exc.file or files["txt"], exc.reason, exc.line))
                    continue
                report.renders += 1
                for problem in _content_problems(channel, language, rendered, files):
                    report.add(problem)
                if channel == "sms":
                    count = count_segments(rendered.body)
                    if worst is None or count.segments > worst[0].segments:
                        worst = (count, customer["first_name"])
    if worst and worst[0].segments > max_segments:
        count, first_name = worst
        report.add(
            Problem(
                files["txt"],
                f"SMS is {count.describe()} for sample customer {first_name!r}; the limit is {max_segments}",
            )
        )


def _content_problems(
    channel: str, language: str, rendered: Rendered, files: dict[str, str]
) -> Iterable[Problem]:
    if not rendered.body.strip():
        yield Problem(files["txt"], "renders to an empty text")
    if "subject" in files and not (rendered.subject or "").strip():
        yield Problem(files["subject"], "renders to an empty subject")
    yield from _transparency_problems(channel, language, rendered, files)
    if channel == "sms" and not re.search(r"\bSTOP(ALL)?\b", rendered.body):
        yield Problem(files["txt"], 'SMS without opt-out: it must say how to stop (reply "STOP")')
    elif channel == "email":
        if SAMPLE_UNSUBSCRIBE_URL not in rendered.body:
            yield Problem(
                files["txt"], "email plain-text part without the unsubscribe link ({{ unsubscribe_url }})"
            )
        if not re.search(rf"href=[\"']{re.escape(SAMPLE_UNSUBSCRIBE_URL)}[\"']", rendered.html or ""):
            yield Problem(
                files["html"],
                'email HTML part without an unsubscribe link (<a href="{{ unsubscribe_url }}">)',
            )
    elif channel in OPT_OUT_WORDING:
        pattern = OPT_OUT_WORDING[channel].get(language)
        if pattern is None:
            yield Problem(
                files["txt"], f"no opt-out wording known for language {language!r} (OPT_OUT_WORDING)"
            )
        elif not re.search(pattern, rendered.body, re.IGNORECASE):
            what = "an opt-out line" if channel == "letter" else "a spoken opt-out notice"
            yield Problem(files["txt"], f"{channel} without {what} (expected wording like /{pattern}/)")


def _transparency_problems(
    channel: str, language: str, rendered: Rendered, files: dict[str, str]
) -> Iterable[Problem]:
    parts = [("txt", rendered.body)]
    if channel == "email":
        parts.append(("html", rendered.html or ""))
    for what, patterns in TRANSPARENCY.items():
        pattern = patterns.get(language)
        if pattern is None:
            yield Problem(files["txt"], f"no transparency wording known for language {language!r} ({what})")
            continue
        for part, text in parts:
            if not re.search(pattern, text, re.IGNORECASE):
                yield Problem(
                    files[part], f"{channel} does not say {what} (expected wording like /{pattern}/)"
                )
    if channel == "sms" and not re.search(rf"\b{SMS_ALL_KEYWORD}\b", rendered.body):
        yield Problem(
            files["txt"], f"SMS does not give the keyword {SMS_ALL_KEYWORD} that stops all marketing"
        )
