"""Erasure: remove or pseudonymise one customer's personal data in every table and file.

What stays (and why) is listed per table in ``holdings.HELD``: rows needed for accountability keep
their facts (a message was sent on a day, an objection was recorded at a time) under a pseudonym
instead of the customer id, with free text and provider payloads emptied. A tombstone (a keyed hash
of the id) keeps the customer suppressed if the bank imports them again (``tombstones.reapply``).
The database work is one transaction, with its audit entry; the files follow it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from outreach import audit
from outreach.db import session_scope
from outreach.errors import NotFound
from outreach.models import Customer, ErasureTombstone, Message, Transaction
from outreach.pseudonym import pseudonym, subject_hash
from outreach.subjects.files import FileReport, erase_files, marks_for
from outreach.subjects.holdings import HELD, Held, rows_of

ERASURE_SOURCE = "erasure"  # the consent source of the objection an erasure implies


class UnknownCustomer(NotFound):
    pass


@dataclass
class ErasureReport:
    customer_id: str
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows deleted or pseudonymised
    files: FileReport = field(default_factory=FileReport)
    audit_seq: int | None = None


def erase(
    engine: Engine,
    customer_id: str,
    file_roots: Iterable[Path],
    *,
    actor: str | None = None,
    now: datetime | None = None,
) -> ErasureReport:
    now = now or datetime.now(UTC)
    report = ErasureReport(customer_id)
    alias = pseudonym(customer_id)
    with session_scope(engine) as session:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise UnknownCustomer(customer_id)
        profile = {
            c: getattr(customer, c) for c in ("customer_id", "first_name", "last_name", "email", "mobile")
        }
        message_ids = list(session.scalars(select(Message.id).where(Message.customer_id == customer_id)))
        ibans = session.scalars(
            select(Transaction.counterparty_iban).where(Transaction.customer_id == customer_id).distinct()
        ).all()
        # erasure implies an objection to marketing: record it first, so it is kept as proof
        objected_at = _global_objection(session, customer_id, now)
        # tables reached through messages or call tasks first, while those still carry the id
        for held in sorted(HELD, key=lambda h: h.via == "customer_id"):
            report.rows[held.table.name] = _apply(session, held, customer_id, alias)
        session.execute(
            update(Message)
            .where(Message.customer_id == alias)
            .values(idempotency_key=func.replace(Message.idempotency_key, f":{customer_id}:", f":{alias}:"))
        )
        entry = audit.append(
            session,
            "subject.erased",
            {"rows": {k: v for k, v in report.rows.items() if v}, "messages": len(message_ids)},
            actor=actor,
            customer_id=customer_id,
            at=now,
        )
        report.audit_seq = entry.seq
        session.merge(
            ErasureTombstone(
                subject_hash=subject_hash(customer_id),
                erased_at=now,
                objected_at=objected_at,
                audit_seq=entry.seq,
            )
        )
    report.files = erase_files(file_roots, marks_for(profile, message_ids, ibans))
    return report


def _global_objection(session: Session, customer_id: str, now: datetime) -> datetime:
    """The customer's standing objection to all marketing: the earliest one still in force, else now."""
    from outreach import consent

    state = consent.current(session, customer_id)
    if state.choices.get("all") == "opt_out":
        latest = [e for e in consent.history(session, customer_id) if e.scope == "all"][-1]
        return latest.recorded_at
    erasure = consent.Actor("system", "erasure")
    consent.record(session, customer_id, "all", "opt_out", ERASURE_SOURCE, at=now, actor=erasure)
    return now


def _apply(session: Session, held: Held, customer_id: str, alias: str) -> int:
    table = held.table
    target = rows_of(held, customer_id).subquery()
    key = list(table.primary_key.columns)[0]
    where = key.in_(select(target.c[key.name]))
    if held.how == "delete":
        return session.execute(delete(table).where(where)).rowcount
    values: dict[str, object] = dict(held.clear or {})
    if held.via == "customer_id":
        values["customer_id"] = alias
    if not values:
        return session.execute(select(func.count()).select_from(target)).scalar_one()
    return session.execute(update(table).where(where).values(**values)).rowcount
