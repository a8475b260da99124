"""Checks for single values read from a file. A bad value becomes (column, reason), never an exception
that loses the row; reasons quote the value, masked when the column holds personal data."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from outreach.pii import mask_email, mask_phone

BANK_TIMEZONE = ZoneInfo("Europe/Amsterdam")  # naive timestamps in the bank's files are local time

# columns whose values are personal data: reasons never quote them in full
PERSONAL = {
    "first_name",
    "last_name",
    "birth_date",
    "mobile",
    "email",
    "street",
    "house_number",
    "postal_code",
    "counterparty_name",
    "counterparty_iban",
    "description",
}

IBAN_SHAPE = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
MCC_SHAPE = re.compile(r"^\d{4}$")
AMOUNT_SHAPE = re.compile(r"^[+-]?\d{1,12}(\.\d{1,2})?$")


def shown(column: str, value: str) -> str:
    """The value as a reason may quote it: masked for personal columns, shortened when long."""
    if column == "mobile":
        return repr(mask_phone(value))
    if column == "email":
        return repr(mask_email(value))
    if column == "counterparty_iban":
        return repr(value[:4] + "****" + value[-2:] if len(value) > 6 else "****")
    if column in PERSONAL:
        return f"'{value[:1]}***' ({len(value)} chars)" if value else "''"
    return repr(value if len(value) <= 60 else value[:57] + "...")


@lru_cache(maxsize=1)
def iana_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=65536)  # counterparties repeat: employers, landlords, the SVB
def iban_ok(iban: str) -> bool:
    """Shape and the ISO 13616 mod-97 check digits."""
    if not IBAN_SHAPE.match(iban):
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


class RowCheck:
    """Reads one raw row (column -> text) into typed values, collecting every problem it finds."""

    __slots__ = ("raw", "errors")

    def __init__(self, raw: Mapping[str, str | None]) -> None:
        self.raw = raw
        self.errors: list[tuple[str, str]] = []

    def fail(self, column: str, reason: str) -> None:
        self.errors.append((column, reason))

    def value(self, column: str) -> str:
        return (self.raw.get(column) or "").strip()

    def text(self, column: str, *, required: bool = False, max_len: int | None = None) -> str | None:
        value = self.value(column)
        if not value:
            if required:
                self.fail(column, "empty, a value is required")
            return None
        if max_len is not None and len(value) > max_len:
            self.fail(column, f"longer than {max_len} characters ({len(value)})")
            return None
        return value

    def choice(self, column: str, options: Iterable[str], *, default: str | None = None) -> str | None:
        value = self.value(column).lower()
        if not value:
            if default is None:
                self.fail(column, "empty, a value is required")
            return default
        options = tuple(options)
        if value not in options:
            self.fail(column, f"{shown(column, self.value(column))} is not one of {', '.join(options)}")
            return None
        return value

    def date(self, column: str, *, required: bool = False) -> date | None:
        value = self.value(column)
        if not value:
            if required:
                self.fail(column, "empty, a date (YYYY-MM-DD) is required")
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(column, f"not a date (YYYY-MM-DD) {shown(column, value)}")
            return None

    def timestamp(self, column: str, *, required: bool = False, date_only: bool = True) -> datetime | None:
        """ISO 8601 date-time (or, with ``date_only``, a date: midnight), in UTC; without an offset it
        is bank local time."""
        value = self.value(column)
        if not value:
            if required:
                self.fail(column, "empty, a date-time (ISO 8601) is required")
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(column, f"not a date-time (ISO 8601) {shown(column, value)}")
            return None
        if len(value) == 10:  # a bare date
            if not date_only:
                self.fail(column, f"a date without a time {shown(column, value)}: a date-time is required")
                return None
            parsed = datetime.combine(parsed.date(), time())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=BANK_TIMEZONE)
        return parsed.astimezone(UTC)

    def amount(self, column: str) -> Decimal | None:
        value = self.value(column)
        if not AMOUNT_SHAPE.match(value):
            what = "empty, an amount is required" if not value else f"not an amount like -12.50 {value!r}"
            self.fail(column, what)
            return None
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern already guarantees a number
            self.fail(column, f"not an amount {value!r}")
            return None

    def fraction(self, column: str) -> float | None:
        """A number from 0 to 1 (a score)."""
        value = self.value(column)
        try:
            number = float(value)
        except ValueError:
            self.fail(
                column, "empty, a number from 0 to 1 is required" if not value else f"not a number {value!r}"
            )
            return None
        if not 0.0 <= number <= 1.0:  # also rejects nan
            self.fail(column, f"{value!r} is not between 0 and 1")
            return None
        return number

    def code(self, column: str, shape: re.Pattern[str], what: str, *, upper: bool = True) -> str | None:
        """An optional short code (currency, country, mcc) that must match ``shape``."""
        value = self.value(column)
        if not value:
            return None
        value = value.upper() if upper else value
        if not shape.match(value):
            self.fail(column, f"not {what} {shown(column, value)}")
            return None
        return value

    def iban(self, column: str) -> str | None:
        value = self.value(column).replace(" ", "").upper()
        if not value:
            return None
        if not iban_ok(value):
            self.fail(column, f"not a valid IBAN {shown(column, value)}")
            return None
        return value

    def timezone(self, column: str, default: str) -> str | None:
        value = self.value(column)
        if not value:
            return default
        if value not in iana_zones():
            self.fail(column, f"not an IANA time zone (like Europe/Amsterdam) {value!r}")
            return None
        return value
