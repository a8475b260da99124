"""Storage model (SQLAlchemy 2): the core's tables. ``outreach.schema`` gathers every table of
every area (this module, ``calls.models``, ``campaigns.tables``) on one metadata for Alembic."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT on PostgreSQL, INTEGER (rowid alias, autoincrementing) on SQLite
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Customer(Base):
    __tablename__ = "customers"
    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(2), default="nl")
    birth_date: Mapped[date | None] = mapped_column(Date)
    mobile: Mapped[str | None] = mapped_column(String(32), index=True)  # E.164 when valid, else as received
    mobile_valid: Mapped[bool] = mapped_column(Boolean, default=False)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    email_valid: Mapped[bool] = mapped_column(Boolean, default=False)
    street: Mapped[str | None] = mapped_column(String(200))
    house_number: Mapped[str | None] = mapped_column(String(20))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2), default="NL")
    address_valid: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")


class Holding(Base):
    __tablename__ = "holdings"
    __table_args__ = (UniqueConstraint("customer_id", "product"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    product: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[date | None] = mapped_column(Date)


class Transaction(Base):
    __tablename__ = "transactions"
    transaction_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    booked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    counterparty_name: Mapped[str | None] = mapped_column(String(200))
    counterparty_iban: Mapped[str | None] = mapped_column(String(34))
    description: Mapped[str | None] = mapped_column(String(300))
    mcc: Mapped[str | None] = mapped_column(String(4))
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))


class ConsentEvent(Base):
    """Append-only: current consent is the latest event per (customer, scope)."""

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_customer_scope", "customer_id", "scope", "recorded_at"),
        Index("ix_consent_feed", "txid", "id"),  # the changes feed's order (outreach.consent_feed)
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(64))  # all | sms | email | letter | phone | topic:<name>
    choice: Mapped[str] = mapped_column(String(8))  # opt_out | opt_in
    source: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # who changed it (outreach.consent.Actor): kind, name (client, agent, file:row), request id
    actor_kind: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(128))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # PostgreSQL: the writing transaction (server default), so the changes feed skips no late commit
    txid: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue())


class ApiClient(Base):
    """A system of the bank that calls the consent API; its key's secret is stored as SHA-256 only."""

    __tablename__ = "api_clients"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str] = mapped_column(String(24), unique=True)  # the key's public part, for lookup
    secret_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated: consent:read consent:write
    rate_limit: Mapped[str | None] = mapped_column(String(32))  # e.g. "100/second"; None: the default
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(Base):
    """A write request's Idempotency-Key and the answer it got: a retry gets the same answer."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("client_id", "key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(BigId, ForeignKey("api_clients.id"))
    key: Mapped[str] = mapped_column(String(128))
    request_sha256: Mapped[str] = mapped_column(String(64))  # method, path and body of the first request
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ObjectionMail(Base):
    """An e-mail to the objection address: applied to exactly one customer, or waiting for review.

    Holds the sender's address (personal data) so a reviewer can find the customer; never logged.
    """

    __tablename__ = "objection_mails"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    mail_id: Mapped[str | None] = mapped_column(String(200), unique=True)  # Message-ID: a re-post once
    sender: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(200))
    spf: Mapped[str | None] = mapped_column(String(32))
    dkim: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), index=True)  # applied | review | resolved | dismissed
    reason: Mapped[str] = mapped_column(String(24))  # matched | no_match | several_matches | spf_failed ...
    customer_id: Mapped[str | None] = mapped_column(String(32))
    reply: Mapped[str | None] = mapped_column(String(12))  # the confirmation: sent | failed
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Suppression(Base):
    __tablename__ = "suppressions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(String(20))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)


class OfferRecord(Base):
    """A snapshot of each offer as configured when a day ran, for the audit trail."""

    __tablename__ = "offers"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    product: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict] = mapped_column(JSON)


class Candidate(Base):
    __tablename__ = "candidates"
    __table_args__ = (
        UniqueConstraint("candidate_date", "customer_id", "offer_code", "trigger", "trigger_ref"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    candidate_date: Mapped[date] = mapped_column(Date, index=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    offer_code: Mapped[str] = mapped_column(String(40))
    trigger: Mapped[str] = mapped_column(String(64))
    trigger_ref: Mapped[str] = mapped_column(String(64), default="")
    score: Mapped[float] = mapped_column(default=0.0)
    source: Mapped[str] = mapped_column(String(32))


class Decision(Base):
    """Exactly one row per candidate: its outcome and the reason code."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), unique=True)
    decision_date: Mapped[date] = mapped_column(Date, index=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    offer_code: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(16))  # planned | held | suppressed | rejected
    reason: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str | None] = mapped_column(String(8))
    legal_basis: Mapped[str | None] = mapped_column(String(24))
    detail: Mapped[str | None] = mapped_column(Text)
    release_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # held: window opens
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Message(Base):
    """The ledger: one row per planned contact, keyed by (date, customer, offer, channel)."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_day_status", "run_date", "channel", "status"),
        # covers the policy's contact-history read (caps, cooldowns): an index-only range scan
        Index("ix_messages_contact_history", "run_date", "customer_id", "offer_code", "channel", "status"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), index=True)  # plan_write
    run_date: Mapped[date] = mapped_column(Date)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    offer_code: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(100), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error_code: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(Text)
    # stable hash bucket of the customer id (outreach.sharding): shard i of n is bucket % n == i
    shard: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MessageTransition(Base):
    __tablename__ = "message_transitions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detail: Mapped[str | None] = mapped_column(Text)


class MessageContent(Base):
    """What a message said, as handed to the channel: written before the send, replaced on a resend.

    Personal data (names, amounts in the text): shown to operators by ``outreach explain`` and
    ``outreach message show``, never logged; purged after OUTREACH_CONTENT_RETENTION_DAYS. Kept out
    of ``messages`` so the ledger rows the dispatcher claims and updates stay narrow.
    """

    __tablename__ = "message_contents"
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    language: Mapped[str] = mapped_column(String(2))  # the template language actually used
    language_note: Mapped[str | None] = mapped_column(String(200))  # e.g. "language en missing, ..."
    template: Mapped[str] = mapped_column(String(120))  # name: templates/<channel>/<name>.<lang>.<part>.j2
    template_digest: Mapped[str] = mapped_column(String(64))  # sha256 (16 hex) of the template sources
    subject: Mapped[str | None] = mapped_column(Text)  # email subject, letter subject line
    body: Mapped[str] = mapped_column(Text)  # SMS text, email plain text, letter body, call script
    html: Mapped[str | None] = mapped_column(Text)  # email HTML part
    content_sha256: Mapped[str] = mapped_column(String(64))  # of subject, body and html as stored
    rendered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeliveryEventRecord(Base):
    """Every provider event, stored once: by the provider's event id, else by a hash of its content."""

    __tablename__ = "delivery_events"
    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id"),
        UniqueConstraint("provider", "content_key", name="uq_delivery_events_content_key"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    provider: Mapped[str] = mapped_column(String(32))
    provider_event_id: Mapped[str | None] = mapped_column(String(128))
    provider_message_id: Mapped[str | None] = mapped_column(String(100), index=True)
    content_key: Mapped[str | None] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(40))  # the provider's code, as given
    description: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    raw: Mapped[dict | None] = mapped_column(JSON)


class ImportRejection(Base):
    """One rejected input row: which file, which row and column, and why (values masked)."""

    __tablename__ = "import_rejections"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(32), index=True)  # one import or candidate load
    kind: Mapped[str] = mapped_column(String(16))  # customers | transactions | ... | candidates
    file: Mapped[str] = mapped_column(String(255))
    row_number: Mapped[int] = mapped_column(Integer)  # line in the file where the row starts (header = 1)
    column_name: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class InboundMessage(Base):
    """A message a customer sent us (SMS reply, STOP, START, HELP), stored once per provider id."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("provider", "provider_message_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    provider: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str] = mapped_column(String(100))
    sender: Mapped[str] = mapped_column(String(254))
    recipient: Mapped[str | None] = mapped_column(String(254))
    customer_id: Mapped[str | None] = mapped_column(String(32), index=True)  # None: number unknown to us
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))  # the contact it answers
    intent: Mapped[str] = mapped_column(String(8))  # stop | start | help | reply
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    raw: Mapped[dict | None] = mapped_column(JSON)


class DayRun(Base):
    """The run of a day in progress (outreach.day_lock): at most one per day, so a second run of the
    same day stops before it writes anything. The row goes when the run ends."""

    __tablename__ = "day_runs"
    run_date: Mapped[date] = mapped_column(Date, primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))  # host/pid of the run
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One entry of the append-only audit log (outreach.audit): chained to the one before by SHA-256."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)  # 1, 2, 3, ... no gaps
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(100))  # who: an operator, an agent, a provider webhook, a flow
    action: Mapped[str] = mapped_column(String(40), index=True)  # e.g. consent.changed, subject.erased
    subject: Mapped[str | None] = mapped_column(
        String(32), index=True
    )  # a customer's pseudonym, never the id
    detail: Mapped[dict] = mapped_column(JSON)  # what changed; no personal data
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


class ErasureTombstone(Base):
    """What is left of an erased customer: a keyed hash, so a re-import finds and suppresses them."""

    __tablename__ = "erasure_tombstones"
    subject_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    objected_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True)
    )  # the global opt-out honoured
    audit_seq: Mapped[int | None] = mapped_column(BigInteger)  # the audit entry that proves the erasure
