"""The `daily-outreach` flow: a thin Prefect wrapper over the core's steps.

A task is a batch of messages, never one message: the ledger, not Prefect, tracks each message.
Parameters are a date and a file path, never personal data (Prefect stores them in clear).

With ``shards`` > 1 (production, docs/production.md) the SMS and email dispatch is split by a hash of
the customer id into that many ``dispatch-shard`` flow runs, created through the shard deployment
so that any worker of the pool picks them up; this run waits for them. Letters and calls (capped
at hundreds or thousands a day by the policy) are sent by this run itself.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, date, datetime

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from channels import KINDS, load_channel
from flows.limits import RATE_LIMITED, check_rate_limits, rate_limiter
from outreach import ledger
from outreach.batches import due_batches
from outreach.config import Settings, get_settings, load_offers
from outreach.db import engine_for, session_scope
from outreach.dispatch import Dispatcher, DispatchReport
from outreach.funnel import compute
from outreach.planning import decide_day
from outreach.sending import reconcile_in_doubt
from outreach.sharding import check as check_shards
from outreach.steps import load_day_candidates

SHARDED = RATE_LIMITED  # the provider channels: the volume, and the rate limits
SHARD_DEPLOYMENT = "dispatch-shard/dispatch-shard"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _engine():
    return engine_for(get_settings().database_url)


def claim_name(settings: Settings, what: str) -> str:
    """Who holds a claim, for the ledger's ``claimed_by``: worker (or host), process, batch."""
    who = (settings.worker_name or socket.gethostname())[:24]
    return f"{who}/{os.getpid()}:{what}"[:64]


@task(name="load-candidates", persist_result=False)
def load_candidates_task(run_date: date, candidates_file: str | None) -> dict:
    return load_day_candidates(_engine(), get_settings(), run_date, candidates_file)


@task(name="decide", persist_result=False)
def decide_task(run_date: date) -> dict:
    settings = get_settings()
    report = decide_day(_engine(), run_date, load_offers(settings.offers_file))
    return {"decided": report.decided, "messages_planned": report.messages_planned}


@task(
    name="dispatch-batch",
    task_run_name="dispatch-{channel}-s{shard}-{batch_no}",
    persist_result=False,
    retries=2,
    retry_delay_seconds=[2, 10],
)
def dispatch_batch(channel: str, ids: list[int], batch_no: int, shard: int = 0) -> DispatchReport:
    settings = get_settings()
    adapter = load_channel(channel, settings.backend_for(channel), outbox_dir=settings.outbox_dir)
    try:
        dispatcher = Dispatcher(
            _engine(),
            settings,
            load_offers(settings.offers_file),
            adapter,
            worker=claim_name(settings, f"{channel}-s{shard}-{batch_no}"),
            limiter=rate_limiter(settings),
        )
        return dispatcher.send_ids(ids)
    finally:
        adapter.close()


@task(name="reconcile", task_run_name="reconcile-{channel}", persist_result=False)
def reconcile_task(
    channel: str, run_date: date, lease_seconds: int | None = None, settle_seconds: int | None = None
) -> dict:
    """Resolve the channel's messages in doubt (unknown, or claims past their lease) first."""
    from datetime import timedelta

    settings = get_settings()
    adapter = load_channel(channel, settings.backend_for(channel), outbox_dir=settings.outbox_dir)
    try:
        dispatcher = Dispatcher(
            _engine(),
            settings,
            load_offers(settings.offers_file),
            adapter,
            worker=claim_name(settings, f"{channel}-reconcile"),
        )
        report = reconcile_in_doubt(
            dispatcher,
            run_date,
            lease=timedelta(seconds=lease_seconds or settings.claim_lease_seconds),
            settle=timedelta(seconds=settle_seconds) if settle_seconds is not None else None,
        )
        return vars(report)
    finally:
        adapter.close()


@task(name="funnel", persist_result=False)
def funnel_task(run_date: date) -> list[dict]:
    funnel = compute(_engine(), run_date)
    rows = funnel.rows()
    create_table_artifact(
        table=rows,
        key=f"funnel-{run_date.isoformat()}",
        description=f"Outreach funnel for {run_date.isoformat()} (counts only)",
    )
    return rows


def send_channels(
    day: date, channels: list[str], shard: int = 0, shards: int = 1
) -> dict[str, DispatchReport]:
    """Every due batch of ``channels`` (of one shard) as task runs on the flow's thread pool; the
    channels' batches interleaved, so a channel waiting for its rate limit does not hold up another."""
    settings = get_settings()
    now = datetime.now(UTC)
    queues = {
        channel: due_batches(_engine(), day, channel, now, settings.batch_size, shard, shards)
        for channel in channels
    }
    futures = []
    for n in range(max((len(q) for q in queues.values()), default=0)):
        for channel, batches in queues.items():
            if n < len(batches):
                futures.append((channel, dispatch_batch.submit(channel, batches[n], n, shard)))
    reports = {channel: DispatchReport() for channel in channels}
    for channel, future in futures:
        reports[channel].add(future.result())
    return reports


def start_shards(day: date, shards: int, deployment: str) -> list:
    """One flow run of the shard deployment per shard, for any worker of the pool to pick up."""
    from prefect.context import get_run_context
    from prefect.deployments import run_deployment

    parent = get_run_context().flow_run.id
    return [
        run_deployment(
            deployment,
            parameters={
                "run_date": day.isoformat(),
                "shard": shard,
                "shards": shards,
                "channels": list(SHARDED),
            },
            timeout=0,  # do not wait here; wait_for_shards does, for all of them
            idempotency_key=f"{parent}:shard-{shard}-of-{shards}",
            flow_run_name=f"dispatch-shard-{day.isoformat()}-{shard}-of-{shards}",
        )
        for shard in range(shards)
    ]


def wait_for_shards(runs: list, timeout_seconds: float, poll_seconds: float = 2.0) -> dict[str, str]:
    """Each shard run's final state name, waiting at most ``timeout_seconds`` for all of them."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_seconds
    states: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        while True:
            for run in runs:
                if states.get(run.name) not in FINAL:
                    state = client.read_flow_run(run.id).state
                    states[run.name] = state.type.value if state else "PENDING"
            if all(s in FINAL for s in states.values()) or time.monotonic() > deadline:
                return states
            time.sleep(poll_seconds)


class DayIncomplete(RuntimeError):
    """Messages of the day are left (a shard died, a transient failure, claims of a dead worker):
    the run ends failed, and a rerun of the day takes over what is left."""


@task(name="unfinished", persist_result=False)
def unfinished_task(run_date: date) -> dict[str, int]:
    with session_scope(_engine()) as session:
        return ledger.unfinished(session, run_date, datetime.now(UTC))


@flow(
    name="daily-outreach",
    flow_run_name="daily-outreach-{run_date}",
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    log_prints=False,
)
def daily_outreach(
    run_date: str | None = None,
    candidates_file: str | None = None,
    shards: int = 1,
    lease_seconds: int | None = None,
    settle_seconds: int | None = None,
    shard_deployment: str = SHARD_DEPLOYMENT,
    shard_timeout_seconds: int = 4 * 3600,
) -> dict:
    """Pull the day's candidates, decide, plan the ledger, send every channel in batches, report.

    shards: 1 sends in this run (the embedded default); N > 1 splits SMS and email into N
    ``dispatch-shard`` runs through ``shard_deployment`` for the pool's workers.
    lease_seconds: claims older than this are a dead worker's and are reconciled (default
    OUTREACH_CLAIM_LEASE_SECONDS, 900). settle_seconds: how long a provider may take to list a
    message before "not found" means "never sent" (default: each adapter's own).
    """
    logger = get_run_logger()
    check_shards(0, shards)
    day = date.fromisoformat(run_date) if run_date else datetime.now(UTC).date()
    settings = get_settings()
    check_rate_limits(settings)  # missing limits fail here, before anything is claimed
    loaded = load_candidates_task(day, candidates_file)
    logger.info("candidates: %s", loaded)
    plan = decide_task(day)
    logger.info("plan: %s", plan)
    for channel in KINDS:
        reconcile_task(channel, day, lease_seconds, settle_seconds)
    runs = start_shards(day, shards, shard_deployment) if shards > 1 else []
    local = [c for c in KINDS if c not in SHARDED] if runs else list(KINDS)
    total = DispatchReport()
    for report in send_channels(day, local).values():
        total.add(report)
    shard_states = wait_for_shards(runs, shard_timeout_seconds) if runs else {}
    logger.info(
        "dispatch here: claimed=%d sent=%d failed=%d unknown=%d requeued=%d cancelled=%d; shards: %s",
        total.claimed,
        total.sent,
        total.failed,
        total.unknown,
        total.requeued,
        total.cancelled,
        shard_states or "none",
    )
    funnel_task(day)
    failed_shards = {name: state for name, state in shard_states.items() if state != "COMPLETED"}
    left = unfinished_task(day)
    if failed_shards or left:
        raise DayIncomplete(
            f"day {day.isoformat()} not finished: messages left {left or 'none'}, shards not completed "
            f"{failed_shards or 'none'}. Run the day again: it reconciles claims older than the lease "
            "and messages in doubt with the provider, then sends what is left (nothing twice)."
        )
    return {
        "run_date": day.isoformat(),
        "candidates": loaded,
        "plan": plan,
        "dispatch": vars(total),
        "shards": shard_states,
    }
