"""Template rendering: Jinja2, sandboxed and strict (a missing field is an error, never "Beste ,").

Templates live in ``templates/<channel>/<name>.<lang>.<part>.j2``. The parts each channel needs:

    sms     txt                      letter  subject (the "Betreft" line), txt (body with closing)
    email   subject, txt, html       call    txt (the script the agent reads)

Files whose name starts with ``_`` are layouts and partials (``{% extends %}``/``{% include %}``),
never messages. A language without templates falls back to nl, and ``Rendered.note`` says so.

Amounts, dates and numbers go through Babel filters in the language of the template actually
used: ``{{ trigger.amount | money }}`` gives ``€ 1.250,00`` (nl) or ``€1,250.00`` (en),
``{{ run_date | date }}`` gives ``3 juni 2019`` / ``3 June 2019``; also ``number`` and ``percent``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    Undefined,
    pass_context,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from outreach.config import Offer
from outreach.errors import InputError

FALLBACK_LANGUAGE = "nl"
LANGUAGES = ("nl", "en")
# English customers of a Dutch bank read English conventions best: €1,250.00 and 3 June 2019
LOCALES = {"nl": "nl_NL", "en": "en_GB"}
PARTS: dict[str, tuple[str, ...]] = {
    "sms": ("txt",),
    "email": ("subject", "txt", "html"),
    "letter": ("subject", "txt"),
    "call": ("txt",),
}
# what the bank says about itself in messages; the letterhead has its own copy (channels/ is separate)
BANK = {
    "name": "Voorbeeldbank",
    "phone": "020\u00a0123\u00a045\u00a067",  # no-break spaces: never split over two lines
    "website": "voorbeeldbank.nl",
    "optout_url": "voorbeeldbank.nl/afmelden",
}
# customer columns a template may use; contact data and the address stay out of the context
CUSTOMER_FIELDS = ("customer_id", "first_name", "last_name", "language", "city", "country")


class TemplateError(InputError):
    """A template that cannot be rendered, naming the file and, when known, the line."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        super().__init__(f"{where}{message}")
        self.file, self.line, self.reason = file, line, message


@dataclass(frozen=True, slots=True)
class Rendered:
    body: str
    subject: str | None = None  # email subject, or the subject line of a letter
    html: str | None = None
    language: str = "nl"
    note: str | None = None  # e.g. "language en missing, fell back to nl"
    template_digest: str = ""  # sha256 of the template sources used: re-renderable exactly if unchanged


def _fail_if_undefined(value: Any) -> None:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()


def _decimal(value: Any) -> Decimal:
    _fail_if_undefined(value)
    if value is None or isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc


def _as_date(value: Any) -> date:
    _fail_if_undefined(value)
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value)
    raise ValueError(f"not a date: {value!r}")


@pass_context
def money_filter(ctx: Any, value: Any, currency: str = "EUR") -> str:
    return format_currency(_decimal(value), currency, locale=ctx["locale"])


@pass_context
def date_filter(ctx: Any, value: Any, format: str = "long") -> str:  # noqa: A002 - Babel's name
    return format_date(_as_date(value), format, locale=ctx["locale"])


@pass_context
def number_filter(ctx: Any, value: Any, format: str | None = None) -> str:  # noqa: A002
    return format_decimal(_decimal(value), format, locale=ctx["locale"])


@pass_context
def percent_filter(ctx: Any, value: Any, format: str = "#,##0.##%") -> str:  # noqa: A002
    return format_percent(_decimal(value), format, locale=ctx["locale"])


def locale_for(language: str) -> str:
    return LOCALES.get(language, LOCALES[FALLBACK_LANGUAGE])


def plain_sms(text: str) -> str:
    """Babel puts no-break spaces in amounts (€\u00a01.250,00); in an SMS they would force UCS-2."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def display_path(path: str | Path) -> str:
    """A path as a user would type it: relative to the working directory when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _locate(exc: BaseException) -> tuple[str | None, int | None]:
    """File and line of a template error. Jinja rewrites tracebacks so the innermost template
    frame is the line that failed (which may be in a layout or include, not the message)."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.filename, exc.lineno
    found: tuple[str | None, int | None] = (None, None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".j2"):
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


class Renderer:
    def __init__(self, templates_dir: str | Path) -> None:
        self.root = Path(templates_dir)
        self.env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(str(self.root)),
            undefined=StrictUndefined,
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            money=money_filter, date=date_filter, number=number_filter, percent=percent_filter
        )
        self._digests: dict[tuple[str, ...], str] = {}

    @staticmethod
    def path(channel: str, name: str, language: str, part: str) -> str:
        return f"{channel}/{name}.{language}.{part}.j2"

    def parts(self, channel: str) -> tuple[str, ...]:
        if channel not in PARTS:
            raise TemplateError(f"unknown channel {channel!r}; known: {', '.join(PARTS)}")
        return PARTS[channel]

    def has_language(self, channel: str, name: str, language: str) -> bool:
        """A language counts as present when any of the channel's parts exists for it."""
        return any((self.root / self.path(channel, name, language, p)).exists() for p in self.parts(channel))

    def resolve_language(self, channel: str, name: str, language: str) -> tuple[str, str | None]:
        language = (language or FALLBACK_LANGUAGE).strip().lower()
        if self.has_language(channel, name, language):
            return language, None
        if self.has_language(channel, name, FALLBACK_LANGUAGE):
            note = f"language {language} missing for {channel}/{name}, fell back to {FALLBACK_LANGUAGE}"
            return FALLBACK_LANGUAGE, note
        missing = self.path(channel, name, FALLBACK_LANGUAGE, self.parts(channel)[0])
        raise TemplateError(f"no {channel} template {name!r} in {language} nor {FALLBACK_LANGUAGE}", missing)

    def render_part(self, path: str, context: Mapping[str, Any]) -> str:
        if not (self.root / path).exists():
            raise TemplateError("template missing", display_path(self.root / path))
        try:
            return self.env.get_template(path).render(context).strip()
        except TemplateNotFound as exc:  # an include or layout that is not there
            raise TemplateError(f"template {exc.name} not found", display_path(self.root / path)) from exc
        except Exception as exc:  # UndefinedError, a bad amount, a syntax error: name file and line
            file, line = _locate(exc)
            file = display_path(file or self.root / path)
            raise TemplateError(f"{type(exc).__name__}: {exc}", file, line) from exc

    def render(self, channel: str, name: str, language: str, context: Mapping[str, Any]) -> Rendered:
        language, note = self.resolve_language(channel, name, language)
        values = {**context, "language": language, "locale": locale_for(language)}
        paths = [self.path(channel, name, language, part) for part in self.parts(channel)]
        texts = dict(zip(self.parts(channel), (self.render_part(p, values) for p in paths), strict=True))
        body = plain_sms(texts["txt"]) if channel == "sms" else texts["txt"]
        return Rendered(
            body=body,
            subject=texts.get("subject"),
            html=texts.get("html"),
            language=language,
            note=note,
            template_digest=self._digest(tuple(paths)),
        )

    def _digest(self, paths: tuple[str, ...]) -> str:
        if paths not in self._digests:
            sha = hashlib.sha256()
            for path in paths:
                sha.update(path.encode() + b"\0" + (self.root / path).read_bytes() + b"\0")
            self._digests[paths] = sha.hexdigest()[:16]
        return self._digests[paths]


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def message_context(
    customer: Mapping[str, Any],
    offer: Offer,
    trigger: Mapping[str, Any],
    run_date: date,
    unsubscribe_url: str | None,
    preferences: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What a template may use. Empty values are left out, so a template that uses one fails
    strictly instead of printing "Beste ,"; guard optional ones with ``{% if x is defined %}``."""
    person = {k: str(customer[k]).strip() for k in CUSTOMER_FIELDS if _present(customer.get(k))}
    names = [person[k] for k in ("first_name", "last_name") if k in person]
    if names:
        person["full_name"] = " ".join(names)
    cause: dict[str, Any] = {"kind": trigger.get("trigger"), "ref": trigger.get("trigger_ref")}
    cause["score"] = trigger.get("score")
    for key in ("amount", "date"):
        if _present(trigger.get(key)):
            cause[key] = trigger[key]
    product = {
        "code": offer.code,
        "product": offer.product,
        "topic": offer.topic,
        **{k: getattr(offer, k) for k in ("valid_from", "valid_until") if getattr(offer, k, None)},
    }
    context: dict[str, Any] = {
        "customer": person,
        "offer": product,
        "trigger": {k: v for k, v in cause.items() if _present(v)},
        "run_date": run_date,
        "bank": dict(BANK),
    }
    if _present(unsubscribe_url):
        context["unsubscribe_url"] = unsubscribe_url
    # the preference centre (outreach.preferences): preferences_url for e-mail and SMS,
    # preferences_page + preferences_code for a letter; absent without a secret
    for key, value in (preferences or {}).items():
        if _present(value):
            context[f"preferences_{key}"] = value
    return context
