"""Personal data at the edges: normalise contact data on the way in, mask it on the way out."""

from __future__ import annotations

import logging
import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email


def normalise_mobile(raw: str | None, region: str = "NL") -> str | None:
    """E.164 for a valid mobile number, else None."""
    if not raw or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str | None) -> str | None:
    """The normalised address when it is syntactically valid (no DNS look-up), else None."""
    if not raw or not raw.strip():
        return None
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def mask_phone(value: str | None) -> str:
    if not value:
        return ""
    return value[:4] + "*" * max(len(value) - 6, 0) + value[-2:] if len(value) > 6 else "***"


def mask_email(value: str | None) -> str:
    if not value or "@" not in value:
        return "***"
    local, domain = value.rsplit("@", 1)
    return f"{local[:1]}***@{domain}"


PHONE_RE = re.compile(r"\+?\d[\d \-]{8,}\d")
EMAIL_RE = re.compile(r"[\w.+\-]+@[\w\-]+\.[\w.\-]+")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}[A-Z]{4}\d{6,10}\b")
# URL paths whose last segment is a credential: the inbound-parse secret, a preference code, an
# unsubscribe token (uvicorn's access log prints request paths)
SECRET_PATH_RE = re.compile(r"(/inbound/sendgrid/|/p/|/unsubscribe/)[^/\s\"'?]{8,}")


def scrub(text: str) -> str:
    """Mask every phone number, email address and IBAN in free text (logs, errors from providers)."""
    text = SECRET_PATH_RE.sub(lambda m: m.group(1) + "***", text)
    text = EMAIL_RE.sub(lambda m: mask_email(m.group()), text)
    text = IBAN_RE.sub(lambda m: m.group()[:4] + "********" + m.group()[-2:], text)
    return PHONE_RE.sub(lambda m: mask_phone(m.group().replace(" ", "").replace("-", "")), text)


class ScrubbingFilter(logging.Filter):
    """A logging filter that masks personal data in every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        return True
