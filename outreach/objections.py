"""Objections by e-mail: a mail to the bank's objection address stops all marketing for the one
customer whose address sent it, and is confirmed by a reply. Anything less certain waits for a
person: no known sender, several customers sharing the address, or SPF/DKIM that did not pass
(a forged From must not unsubscribe someone else). Nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from outreach import consent
from outreach.errors import InputError
from outreach.models import Customer, ObjectionMail

SOURCE = "email:objection"
# SendGrid's dkim field: "{@bank.nl : pass}" or several, comma-separated
DKIM_RESULT = re.compile(r"@([\w.-]+)\s*:\s*(\w+)")
MESSAGE_ID = re.compile(r"^message-id:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class ObjectionError(InputError):
    pass


@dataclass(frozen=True)
class InboundMail:
    """The fields of a SendGrid Inbound Parse post that decide what happens."""

    sender: str  # the From address, lower-cased ("" when none could be read)
    subject: str
    spf: str
    dkim: str
    mail_id: str | None

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> InboundMail:
        address = parseaddr(form.get("from", ""))[1].strip().lower()
        found = MESSAGE_ID.search(form.get("headers", ""))
        return cls(
            sender=address if "@" in address else "",
            subject=form.get("subject", "")[:200],
            spf=form.get("SPF", form.get("spf", "")).strip().lower()[:32],
            dkim=form.get("dkim", "")[:200],
            mail_id=found.group(1)[:200] if found else None,
        )

    def authenticated(self) -> str | None:
        """None when SPF passed and a DKIM signature of the sender's domain passed; else why not."""
        if self.spf != "pass":
            return "spf_failed"
        domain = self.sender.rpartition("@")[2]
        if not any(d.lower() == domain and r.lower() == "pass" for d, r in DKIM_RESULT.findall(self.dkim)):
            return "dkim_failed"
        return None


@dataclass(frozen=True)
class Received:
    id: int | None  # None: a re-post of a mail already received
    status: str  # applied | review
    reason: str
    customer_id: str | None


def receive(session: Session, mail: InboundMail, at: datetime | None = None) -> Received:
    """Store the mail once; apply the objection when it is certain, else queue it for review."""
    at = at or datetime.now(UTC)
    matches: list[str] = []
    reason = "no_sender" if not mail.sender else mail.authenticated()
    if reason is None:
        matches = list(
            session.scalars(
                select(Customer.customer_id).where(func.lower(Customer.email) == mail.sender).limit(2)
            )
        )
        reason = {0: "no_match", 1: "matched"}.get(len(matches), "several_matches")
    status = "applied" if reason == "matched" else "review"
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    row_id = session.execute(
        insert(ObjectionMail)
        .values(
            received_at=at,
            mail_id=mail.mail_id,
            sender=mail.sender or None,
            subject=mail.subject or None,
            spf=mail.spf or None,
            dkim=mail.dkim or None,
            status=status,
            reason=reason,
            customer_id=matches[0] if status == "applied" else None,
        )
        .on_conflict_do_nothing(index_elements=["mail_id"])
        .returning(ObjectionMail.id)
    ).scalar()
    if row_id is None:
        return Received(None, status, "duplicate", None)
    if status == "applied":
        _object(session, matches[0], f"objection-mail-{row_id}", "sendgrid-inbound-parse", at)
    return Received(row_id, status, reason, matches[0] if status == "applied" else None)


def _object(session: Session, customer_id: str, request_id: str, by: str, at: datetime) -> None:
    if consent.latest_choice(session, customer_id, "all") != "opt_out":
        actor = consent.Actor("inbound_mail", by, request_id)
        consent.record(session, customer_id, "all", "opt_out", SOURCE, at=at, actor=actor)


def pending(session: Session) -> list[ObjectionMail]:
    stmt = select(ObjectionMail).where(ObjectionMail.status == "review").order_by(ObjectionMail.id)
    return list(session.scalars(stmt))


def resolve(
    session: Session, mail_id: int, customer_id: str | None, reviewer: str, at: datetime | None = None
) -> ObjectionMail:
    """A reviewer's decision: apply the objection to ``customer_id``, or dismiss it (None)."""
    at = at or datetime.now(UTC)
    row = session.get(ObjectionMail, mail_id)
    if row is None or row.status != "review":
        raise ObjectionError(f"no objection mail {mail_id} waiting for review")
    if customer_id is not None:
        if session.get(Customer, customer_id) is None:
            raise ObjectionError(f"unknown customer {customer_id}")
        _object(session, customer_id, f"objection-mail-{mail_id}", f"reviewer:{reviewer}", at)
    row.status = "resolved" if customer_id else "dismissed"
    row.customer_id, row.decided_by, row.decided_at = customer_id, reviewer[:64], at
    return row
