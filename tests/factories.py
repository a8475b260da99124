"""Small builders for test data, written straight into the tables."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import insert

from outreach.db import session_scope
from outreach.models import Candidate, ConsentEvent, Customer, Holding, Suppression


def customer(customer_id: str, **overrides) -> dict:
    row = {
        "customer_id": customer_id,
        "first_name": "Anne",
        "last_name": "de Vries",
        "language": "nl",
        "birth_date": date(1980, 5, 1),
        "mobile": "+31612345678",
        "mobile_valid": True,
        "email": f"{customer_id.lower()}@example.nl",
        "email_valid": True,
        "street": "Dorpsstraat",
        "house_number": "12",
        "postal_code": "1234 AB",
        "city": "Utrecht",
        "country": "NL",
        "address_valid": True,
        "timezone": "Europe/Amsterdam",
    }
    row.update(overrides)
    return row


def add_customers(engine, *rows: dict) -> None:
    with session_scope(engine) as session:
        session.execute(insert(Customer), list(rows))


def add_candidates(engine, run_date: date, *items: tuple) -> None:
    """items: (customer_id, offer_code[, score])"""
    rows = [
        {
            "candidate_date": run_date,
            "customer_id": item[0],
            "offer_code": item[1],
            "trigger": "test",
            "trigger_ref": f"tx-{n}",
            "score": item[2] if len(item) > 2 else 0.5,
            "source": "test",
        }
        for n, item in enumerate(items)
    ]
    with session_scope(engine) as session:
        session.execute(insert(Candidate), rows)


def add_consent(
    engine, customer_id: str, scope: str, choice: str = "opt_out", at: datetime | None = None
) -> None:
    with session_scope(engine) as session:
        session.execute(
            insert(ConsentEvent),
            [
                {
                    "customer_id": customer_id,
                    "scope": scope,
                    "choice": choice,
                    "source": "test",
                    "recorded_at": at or datetime(2026, 1, 1, tzinfo=UTC),
                }
            ],
        )


def add_suppression(engine, customer_id: str, reason: str, valid_from: date, valid_until: date | None = None):
    with session_scope(engine) as session:
        session.execute(
            insert(Suppression),
            [
                {
                    "customer_id": customer_id,
                    "reason": reason,
                    "valid_from": valid_from,
                    "valid_until": valid_until,
                }
            ],
        )


def add_holding(engine, customer_id: str, product: str) -> None:
    with session_scope(engine) as session:
        session.execute(insert(Holding), [{"customer_id": customer_id, "product": product}])
