"""Where Outreach holds a customer's data: every table, how its rows are found, what erasure does.

One list for export and erasure alike, so a table added to one cannot be forgotten by the other;
tests/test_subjects.py fails when a table with a customer column is missing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Select, Table, select

from outreach.calls.models import CallAttempt, CallLead, CallTask
from outreach.campaigns.tables import CampaignAssignment
from outreach.live.tables import LiveEvent
from outreach.models import (
    Base,
    Candidate,
    ConsentEvent,
    Customer,
    Decision,
    DeliveryEventRecord,
    Holding,
    InboundMessage,
    Message,
    MessageContent,
    MessageTransition,
    ObjectionMail,
    Suppression,
    Transaction,
)

# delete: the rows go. pseudonymise: the rows stay for accountability (counts, proof that an
# objection was honoured) with the customer id replaced and the columns in ``clear`` emptied.
Treatment = Literal["delete", "pseudonymise"]


@dataclass(frozen=True)
class Held:
    section: str  # the export's name for it
    table: Table
    how: Treatment
    via: str = "customer_id"  # customer_id | message_id (-> messages) | task_id (-> call_tasks)
    clear: dict[str, object] | None = None  # column -> value that replaces personal data
    why: str = ""  # what is kept and why (docs/compliance.md repeats it)


def _t(model) -> Table:
    return model.__table__


HELD: tuple[Held, ...] = (
    Held("profile", _t(Customer), "delete", why="contact data and name: nothing is kept"),
    Held("holdings", _t(Holding), "delete"),
    Held("transactions", _t(Transaction), "delete", why="payment data: nothing is kept"),
    Held(
        "consent_history",
        _t(ConsentEvent),
        "pseudonymise",
        why="proof that an objection was recorded and when (GDPR art. 21, accountability art. 5(2))",
    ),
    Held("suppressions", _t(Suppression), "pseudonymise", why="proof the customer was on a list"),
    Held("candidates", _t(Candidate), "pseudonymise", why="counts in the accountability report"),
    Held("decisions", _t(Decision), "pseudonymise", why="proof that an objection stopped every contact"),
    Held(
        "messages",
        _t(Message),
        "pseudonymise",
        clear={"last_error": None},
        why="the ledger: which contacts were made and when, for the regulator's figures",
    ),
    Held("message_transitions", _t(MessageTransition), "pseudonymise", via="message_id"),
    Held(
        "message_contents", _t(MessageContent), "delete", via="message_id", why="what a message said: deleted"
    ),
    Held(
        "delivery_events",
        _t(DeliveryEventRecord),
        "pseudonymise",
        via="message_id",
        clear={"raw": None, "description": None},
        why="event type and time stay (complaints, opt-outs); the provider payload (address) goes",
    ),
    Held(
        "inbound_messages",
        _t(InboundMessage),
        "pseudonymise",
        clear={"sender": "erased", "recipient": None, "body": "", "raw": None},
        why="the intent (STOP) and its time stay as proof; number and text go",
    ),
    Held(
        "call_tasks",
        _t(CallTask),
        "pseudonymise",
        clear={"trigger_text": None},
        why="that a call was made and its outcome",
    ),
    Held("call_attempts", _t(CallAttempt), "pseudonymise", via="task_id", clear={"note": None}),
    Held("call_leads", _t(CallLead), "pseudonymise", clear={"note": None}),
    Held("campaign_assignments", _t(CampaignAssignment), "pseudonymise", why="campaign counts stay right"),
    Held(
        "objection_mails",
        _t(ObjectionMail),
        "delete",
        why="the mail's sender address and subject go; the objection it caused stays in consent_history",
    ),
    Held(
        "live_events",
        _t(LiveEvent),
        "pseudonymise",
        why="which payment event (id, trigger, time) led to a live contact; no amount or place is stored",
    ),
)

# tables with customer data that are deliberately not per-customer rows: why each is safe
NOT_PER_CUSTOMER = {
    "audit_log": "names customers only by pseudonym and holds no personal data",
    "erasure_tombstones": "the keyed hash of an erased customer, nothing else",
    "import_rejections": "rejected input rows with their values masked",
}


def rows_of(held: Held, customer_id: str) -> Select:
    """The rows of ``held`` that belong to ``customer_id``."""
    table = held.table
    if held.via == "customer_id":
        return select(table).where(table.c.customer_id == customer_id)
    if held.via == "message_id":
        ids = select(Message.id).where(Message.customer_id == customer_id)
        return select(table).where(table.c.message_id.in_(ids))
    ids = select(CallTask.id).where(CallTask.customer_id == customer_id)
    return select(table).where(table.c.task_id.in_(ids))


def customer_tables() -> set[str]:
    """Every table with a customer, message or call-task column: each must be in HELD or explained."""
    names = set()
    for table in Base.metadata.sorted_tables:
        if {"customer_id", "message_id", "task_id"} & set(table.c.keys()):
            names.add(table.name)
    return names
