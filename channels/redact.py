"""Mask phone numbers and email addresses before they reach a log line or a stored error.

``channels/`` may not import the core, so this mirrors the masking of ``outreach.pii`` (same
shapes: ``+316******78``, ``j***@example.com``) for provider error texts and SDK log records.
"""

from __future__ import annotations

import logging
import re

# nine or more digits with single spaces/dashes between, not inside a longer token (SIDs, dates);
# "%2B" is the URL-encoded "+" of a number in a query string
PHONE_RE = re.compile(r"(?:(?<![\w+])|(?<=%2B))\+?\d(?:[ \-]?\d){8,}(?![\w])")
EMAIL_RE = re.compile(r"[\w.+\-]+@[\w\-]+\.[\w.\-]+")


def mask_phone(value: str | None) -> str:
    if not value:
        return ""
    return value[:4] + "*" * max(len(value) - 6, 0) + value[-2:] if len(value) > 6 else "***"


def mask_email(value: str | None) -> str:
    if not value or "@" not in value:
        return "***"
    local, domain = value.rsplit("@", 1)
    return f"{local[:1]}***@{domain}"


def mask(value: str | None) -> str:
    """Mask one recipient, whichever kind it is."""
    return mask_email(value) if value and "@" in value else mask_phone(value)


def scrub(text: str) -> str:
    """Mask every phone number and email address in free text (provider messages, log lines)."""
    text = EMAIL_RE.sub(lambda m: mask_email(m.group()), text)
    return PHONE_RE.sub(lambda m: mask_phone(m.group().replace(" ", "").replace("-", "")), text)


class MaskingFilter(logging.Filter):
    """Masks personal data in each record's final message (attach to the SDKs' loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


_FILTER = MaskingFilter()


def mask_logger(name: str) -> logging.Logger:
    """The named logger with the masking filter attached once."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
