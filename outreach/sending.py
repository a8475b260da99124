"""Resolve messages in doubt against the provider, and drive one channel's day to the end.

Messages are *in doubt* when we cannot know from our own records whether the provider got them:

* ``sending`` rows whose worker died (SIGKILL, OOM, a lost node) after claiming them; they become
  ``unknown`` once their claim is older than the lease (no live worker holds a claim that long);
* ``unknown`` rows whose request may have left (a timeout or reset after sending, a 5xx).

They are never resent blindly. ``reconcile_in_doubt`` asks the provider through the adapter's
``reconcile`` capability (Twilio: messages to that number since the claim; SendGrid: the ``outreach_id``
custom arg):

* found: the message was sent; it moves to ``sent`` with the provider's id;
* not found, and the claim is older than the provider's settle time (Twilio's list shows a
  message as soon as the POST returns; SendGrid's activity feed can lag minutes): the provider
  verifiably has no such message, so nothing can be duplicated and the message goes back to
  ``planned`` for the next pass. With ``resend_not_found=False`` it ends ``failed`` with
  ``not_sent_unknown`` instead: the stricter stance where marketing takes a missed message over
  any residual risk (a provider whose records lag more than the settle time);
* not found but younger than the settle time: stays ``unknown`` for a later pass;
* a channel that cannot be asked (outbox, letters) or a provider that does not answer: stays
  ``unknown`` for an operator.

``send_batches`` is the one dispatch driver (the flows run it with Prefect tasks); ``send_due`` runs
it outside Prefect (a worker, a benchmark, a test): reconcile, send every due batch, repeat while
transient failures gave messages back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, select

from channels.base import Capability
from channels.errors import ChannelError
from outreach import ledger
from outreach.batches import due_batches
from outreach.db import as_utc, session_scope
from outreach.dispatch import MAX_ATTEMPTS, Dispatcher, DispatchReport, release_stale_claims
from outreach.models import Message
from outreach.statuses import MessageStatus

log = logging.getLogger(__name__)
DEFAULT_LEASE = timedelta(minutes=15)  # longer than any batch can take to send


@dataclass
class ReconcileReport:
    examined: int = 0
    found_sent: int = 0
    requeued: int = 0
    failed: int = 0
    still_unknown: int = 0


def reconcile_in_doubt(
    dispatcher: Dispatcher,
    run_date: date,
    *,
    lease: timedelta = DEFAULT_LEASE,
    settle: timedelta | None = None,
    resend_not_found: bool = True,
    now: datetime | None = None,
) -> ReconcileReport:
    """Resolve the channel's ``unknown`` messages of ``run_date`` (after turning claims older than
    ``lease`` into ``unknown``) against the provider. See the module docstring for the rules."""
    now = now or datetime.now(UTC)
    channel = dispatcher.channel
    release_stale_claims(dispatcher.engine, now - lease)
    with session_scope(dispatcher.engine) as session:
        rows = session.execute(
            select(Message.id, Message.claimed_at).where(
                Message.run_date == run_date,
                Message.channel == channel.kind,
                Message.status == MessageStatus.UNKNOWN,
            )
        ).all()
    report = ReconcileReport(examined=len(rows))
    if not rows:
        return report
    if not channel.supports(Capability.RECONCILE):
        report.still_unknown = len(rows)
        log.warning("%d %s messages in doubt; %s cannot reconcile", len(rows), channel.kind, channel.provider)
        return report
    claimed = {mid: as_utc(at) or now for mid, at in rows}
    outbound = {}
    for message, customer, candidate in dispatcher._load(list(claimed)):
        try:
            outbound[message.id] = dispatcher._build(message, customer, candidate)
        except Exception:  # cannot rebuild (template gone): leave it for an operator
            log.exception("cannot rebuild message %s for reconciliation", message.id)
    if not outbound:
        report.still_unknown = len(rows)
        return report
    settle = settle if settle is not None else channel.reconcile_settle
    try:
        found = channel.reconcile(list(outbound.values()), min(claimed.values()) - timedelta(minutes=1))
    except ChannelError as exc:
        log.warning("cannot reconcile %d %s messages now: %s", len(outbound), channel.kind, exc)
        report.still_unknown = len(rows)
        return report
    with session_scope(dispatcher.engine) as session:
        for mid, message in outbound.items():
            result = found.get(message.message_id)
            if result is not None:
                report.found_sent += ledger.transition(
                    session,
                    [mid],
                    MessageStatus.SENT,
                    expected=MessageStatus.UNKNOWN,
                    detail=f"reconciled: found at {channel.provider}",
                    provider=channel.provider,
                    provider_id=result.provider_message_id,
                )
            elif claimed[mid] > now - settle:
                report.still_unknown += 1
            elif resend_not_found:
                report.requeued += ledger.transition(
                    session,
                    [mid],
                    MessageStatus.PLANNED,
                    expected=MessageStatus.UNKNOWN,
                    detail=f"reconciled: not at {channel.provider}, sent again",
                )
            else:
                report.failed += ledger.transition(
                    session,
                    [mid],
                    MessageStatus.FAILED,
                    expected=MessageStatus.UNKNOWN,
                    detail=f"reconciled: not at {channel.provider}; not resent",
                    last_error_code="not_sent_unknown",
                )
    report.still_unknown += len(rows) - len(outbound)
    return report


class BatchAnswer(Protocol):
    """A batch handed to an executor: a Prefect future or a concurrent.futures one."""

    def result(self) -> DispatchReport: ...


RunBatch = Callable[[str, list[int], int], "DispatchReport | BatchAnswer"]


def send_batches(
    engine: Engine,
    run_date: date,
    channels: Sequence[str],
    run_batch: RunBatch,
    *,
    batch_size: int,
    at: Callable[[], datetime] = lambda: datetime.now(UTC),
    carry_days: int = 0,
    shard: int = 0,
    shards: int = 1,
    max_passes: int = MAX_ATTEMPTS,
    before_pass: Callable[[], int] | None = None,
) -> dict[str, DispatchReport]:
    """The one dispatch driver: the flows (through Prefect tasks) and ``send_due`` (through a
    thread pool) both send a day with it.

    Each pass lists every due batch of ``channels`` (of one shard), hands them to ``run_batch``
    interleaved across channels (a channel waiting for its rate limit does not hold up another),
    and waits for all. It is the one retry layer above the adapters' own classified retries, and a
    conditional one: another pass runs only while a pass gave messages back (a transient failure
    requeued them, each within its MAX_ATTEMPTS claims, or ``before_pass`` -- reconciliation --
    returned some), at most ``max_passes`` passes. Everything else is left for a rerun of the day.
    """
    totals = {channel: DispatchReport() for channel in channels}
    for _ in range(max_passes):
        given_back = before_pass() if before_pass else 0
        now = at()
        queues = {
            channel: due_batches(engine, run_date, channel, now, batch_size, carry_days, shard, shards)
            for channel in channels
        }
        handed: list[tuple[str, DispatchReport | BatchAnswer]] = []
        for n in range(max((len(q) for q in queues.values()), default=0)):
            for channel, batches in queues.items():
                if n < len(batches):
                    handed.append((channel, run_batch(channel, batches[n], n)))
        moved = DispatchReport()
        for channel, answer in handed:
            report = answer if isinstance(answer, DispatchReport) else answer.result()
            totals[channel].add(report)
            moved.add(report)
        if not (moved.requeued or moved.unknown or given_back):
            break
    return totals


def send_due(
    dispatcher: Dispatcher,
    run_date: date,
    *,
    batch_size: int = 500,
    at: datetime | None = None,
    lease: timedelta = DEFAULT_LEASE,
    settle: timedelta | None = None,
    resend_not_found: bool = True,
    max_passes: int = MAX_ATTEMPTS + 2,
    workers: int = 1,
    shard: int = 0,
    shards: int = 1,
) -> tuple[DispatchReport, ReconcileReport]:
    """Reconcile, then send every due batch of the dispatcher's channel, through ``send_batches``
    (reconciliation before each pass) on this process's threads: what a worker outside Prefect,
    a benchmark or a test runs.

    ``workers`` > 1 sends that many batches at once (what the flow's task runner does with batch
    tasks): one batch is claimed, loaded and rendered while another is with the provider, so the
    adapter's connections are not idle during our own bookkeeping. The adapter's pool still bounds
    the requests in flight. ``shard``/``shards`` send one part of the day (outreach.sharding), as
    one ``dispatch-shard`` flow run does: several processes then share the day without overlap."""
    reconciled = ReconcileReport()

    def reconcile_first() -> int:
        step = reconcile_in_doubt(
            dispatcher, run_date, lease=lease, settle=settle, resend_not_found=resend_not_found
        )
        for name in ("examined", "found_sent", "requeued", "failed"):
            setattr(reconciled, name, getattr(reconciled, name) + getattr(step, name))
        reconciled.still_unknown = step.still_unknown
        return step.requeued

    kind = dispatcher.channel.kind
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="send-due") as pool:

        def run_batch(channel: str, ids: list[int], n: int) -> DispatchReport | BatchAnswer:
            return pool.submit(dispatcher.send_ids, ids) if workers > 1 else dispatcher.send_ids(ids)

        reports = send_batches(
            dispatcher.engine,
            run_date,
            [kind],
            run_batch,
            batch_size=batch_size,
            at=(lambda: at) if at else (lambda: datetime.now(UTC)),
            shard=shard,
            shards=shards,
            max_passes=max_passes,
            before_pass=reconcile_first,
        )
    return reports[kind], reconciled
