"""The column contract of each bank file and how one row becomes one table row.

Every file has a header row and is UTF-8; extra columns are ignored (with one warning naming
them), missing required columns are an error. A value that breaks the contract rejects its row
with the column and the reason, except unusable contact data on a customer: that row is imported
with the field marked invalid. A customer twice in one file and a transaction of an unknown
customer are rejected too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from babel.numbers import is_currency

from outreach.consent import CHOICES, ConsentError, check_scope
from outreach.imports.fields import RowCheck
from outreach.imports.writer import TableSpec
from outreach.models import ConsentEvent, Customer, Holding, Suppression, Transaction
from outreach.pii import normalise_email, normalise_mobile

DEFAULT_TIMEZONE = "Europe/Amsterdam"
LANGUAGES = ("nl", "en")
SUPPRESSION_REASONS = ("vulnerable", "arrears", "deceased", "minor", "complaint", "other")

COUNTRY = re.compile(r"^[A-Z]{2}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
MCC = re.compile(r"^\d{4}$")
NL_POSTCODE = re.compile(r"^([1-9]\d{3}) ?([A-Z]{2})$")


@dataclass(frozen=True)
class Contract:
    kind: str
    required: tuple[str, ...]  # must be in the header
    optional: tuple[str, ...]  # read when present
    convert: Callable[[RowCheck], dict[str, Any]]
    spec: TableSpec
    flags: Callable[[dict[str, Any], RowCheck], list[str]] = field(default=lambda row, check: [])
    once_per_file: tuple[str, ...] = ()  # columns whose value may appear on one row of a file only
    needs_customer: bool = False  # rows name a customer who must exist already

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


def _customer(check: RowCheck) -> dict[str, Any]:
    mobile_raw = check.value("mobile")
    email_raw = check.value("email")
    mobile = normalise_mobile(mobile_raw) if len(mobile_raw) <= 32 else None
    email = normalise_email(email_raw) if len(email_raw) <= 254 else None
    country = check.code("country", COUNTRY, "a two-letter country code") or "NL"
    postal_code = check.text("postal_code", max_len=10)
    address = {
        "street": check.text("street", max_len=200),
        "house_number": check.text("house_number", max_len=20),
        "postal_code": postal_code,
        "city": check.text("city", max_len=100),
    }
    address_valid = all(address.values())
    if address_valid and country == "NL":
        match = NL_POSTCODE.match(postal_code.upper())
        if match:
            address["postal_code"] = f"{match.group(1)} {match.group(2)}"
        else:
            address_valid = False
    return {
        "customer_id": check.text("customer_id", required=True, max_len=32),
        "first_name": check.text("first_name", required=True, max_len=100),
        "last_name": check.text("last_name", required=True, max_len=100),
        "language": check.choice("language", LANGUAGES, default="nl"),
        "birth_date": check.date("birth_date"),
        # the number as received is kept when it is unusable, so it can be looked at and fixed
        "mobile": mobile or (mobile_raw[:32] or None),
        "mobile_valid": mobile is not None,
        "email": email or (email_raw[:254] or None),
        "email_valid": email is not None,
        **address,
        "country": country,
        "address_valid": address_valid,
        "timezone": check.timezone("timezone", DEFAULT_TIMEZONE),
    }


def _customer_flags(row: dict[str, Any], check: RowCheck) -> list[str]:
    flags = []
    for name in ("mobile", "email"):
        if not row[f"{name}_valid"]:
            flags.append(f"{name}_invalid" if check.value(name) else f"{name}_missing")
    if not row["address_valid"]:
        flags.append("address_invalid")
    return flags


def _currency(check: RowCheck) -> str:
    """An ISO 4217 code (CLDR's list, from Babel); EUR when empty."""
    code = check.code("currency", CURRENCY, "a three-letter currency code")
    if code and not is_currency(code):
        check.fail("currency", f"{code} is not an ISO 4217 currency code")
    return code or "EUR"


def _transaction(check: RowCheck) -> dict[str, Any]:
    return {
        "transaction_id": check.text("transaction_id", required=True, max_len=40),
        "customer_id": check.text("customer_id", required=True, max_len=32),
        # the time of day matters (airport cash at night, quiet hours): a bare date would be midnight
        "booked_at": check.timestamp("booked_at", required=True, date_only=False),
        "amount": check.amount("amount"),
        "currency": _currency(check),
        "counterparty_name": check.text("counterparty_name", max_len=200),
        "counterparty_iban": check.iban("counterparty_iban"),
        "description": check.text("description", max_len=300),
        "mcc": check.code("mcc", MCC, "a four-digit merchant category code"),
        "city": check.text("city", max_len=100),
        "country": check.code("country", COUNTRY, "a two-letter country code"),
    }


def _consent(check: RowCheck) -> dict[str, Any]:
    scope = check.value("scope").lower()
    if not scope:
        check.fail("scope", "empty, a value is required")
    else:
        try:
            scope = check_scope(scope)
        except ConsentError:
            check.fail("scope", f"{scope!r} is not all, sms, email, letter, phone or topic:<name>")
    return {
        "customer_id": check.text("customer_id", required=True, max_len=32),
        "scope": scope,
        "choice": check.choice("choice", CHOICES),
        "source": check.text("source", max_len=64) or "import",
        "recorded_at": check.timestamp("recorded_at", required=True),
    }


def _suppression(check: RowCheck) -> dict[str, Any]:
    valid_from = check.date("valid_from", required=True)
    valid_until = check.date("valid_until")
    if valid_from and valid_until and valid_until < valid_from:
        check.fail("valid_until", f"{valid_until} is before valid_from {valid_from}")
    return {
        "customer_id": check.text("customer_id", required=True, max_len=32),
        "reason": check.choice("reason", SUPPRESSION_REASONS),
        "valid_from": valid_from,
        "valid_until": valid_until,
    }


def _holding(check: RowCheck) -> dict[str, Any]:
    return {
        "customer_id": check.text("customer_id", required=True, max_len=32),
        "product": check.text("product", required=True, max_len=64),
        "opened_at": check.date("opened_at"),
    }


CONTRACTS: dict[str, Contract] = {
    "customers": Contract(
        "customers",
        required=(
            "customer_id",
            "first_name",
            "last_name",
            "language",
            "birth_date",
            "mobile",
            "email",
            "street",
            "house_number",
            "postal_code",
            "city",
            "country",
        ),
        optional=("timezone",),
        convert=_customer,
        flags=_customer_flags,
        once_per_file=("customer_id",),  # two rows for one customer: which one is right is unknown
        spec=TableSpec(
            Customer.__table__,
            key=("customer_id",),
            lookup=("customer_id",),
            update=tuple(c.name for c in Customer.__table__.columns if c.name != "customer_id"),
        ),
    ),
    "transactions": Contract(
        "transactions",
        required=(
            "transaction_id",
            "customer_id",
            "booked_at",
            "amount",
            "currency",
            "counterparty_name",
            "counterparty_iban",
            "description",
            "mcc",
            "city",
            "country",
        ),
        optional=(),
        convert=_transaction,
        needs_customer=True,
        spec=TableSpec(Transaction.__table__, key=("transaction_id",), lookup=("transaction_id",)),
    ),
    "consents": Contract(
        "consents",
        required=("customer_id", "scope", "choice", "source", "recorded_at"),
        optional=(),
        convert=_consent,
        # the history is append-only: the same event (customer, scope, choice, source, time) once
        spec=TableSpec(
            ConsentEvent.__table__,
            key=("customer_id", "scope", "choice", "source", "recorded_at"),
            lookup=("customer_id",),
            unique=False,
        ),
    ),
    "suppressions": Contract(
        "suppressions",
        required=("customer_id", "reason", "valid_from", "valid_until"),
        optional=(),
        convert=_suppression,
        # a re-sent row with a new end date ends (or extends) the suppression
        spec=TableSpec(
            Suppression.__table__,
            key=("customer_id", "reason", "valid_from"),
            lookup=("customer_id",),
            update=("valid_until",),
            unique=False,
        ),
    ),
    "holdings": Contract(
        "holdings",
        required=("customer_id", "product"),
        optional=("opened_at",),
        convert=_holding,
        spec=TableSpec(Holding.__table__, key=("customer_id", "product"), lookup=("customer_id",)),
    ),
}
