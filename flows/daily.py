"""The `daily-outreach` flow: a thin Prefect wrapper over the core's steps.

A task is a batch of messages, never one message: the ledger, not Prefect, tracks each message.
Parameters are a date and a file path, never personal data (Prefect stores them in clear).

With ``shards`` > 1 (production, docs/production.md) the SMS and email dispatch is split by a hash of
the customer id into that many ``dispatch-shard`` flow runs, created through the shard deployment
so that any worker of the pool picks them up; the dispatch run waits for them. Letters and calls
(capped at hundreds or thousands a day by the policy) are sent by the dispatch run itself.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner
from sqlalchemy.exc import InterfaceError, OperationalError

from channels import KINDS
from flows.events import signal_day_end_task, signal_planned_task
from flows.limits import RATE_LIMITED, check_rate_limits, rate_limiter
from outreach.calls.tasks import create_tasks, expire_tasks
from outreach.campaigns.funnel import campaign_funnels
from outreach.campaigns.report import build_report
from outreach.channel_setup import open_channel
from outreach.completion import unfinished
from outreach.config import Settings, get_settings, load_offers
from outreach.day_lock import day_lock
from outreach.db import engine_for, session_scope
from outreach.delivery_status import lifecycle
from outreach.dispatch import Dispatcher, DispatchReport
from outreach.errors import RunIncomplete
from outreach.funnel import compute
from outreach.planning import decide_day
from outreach.printing import build_print_batches
from outreach.sending import reconcile_in_doubt, send_batches
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


@contextmanager
def _dispatcher(channel: str, worker: str, limiter=None) -> Iterator[Dispatcher]:
    """A Dispatcher over a freshly opened adapter (one per task run: SDK clients are per thread)."""
    settings = get_settings()
    adapter = open_channel(settings, channel)
    try:
        yield Dispatcher(
            _engine(),
            settings,
            load_offers(settings.offers_file),
            adapter,
            worker=claim_name(settings, worker),
            limiter=limiter,
        )
    finally:
        adapter.close()


def database_dropped(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's retry_condition_fn
    """Retry a batch only when it failed because the database connection did (failover, restart):
    provider failures are the adapters' retries and send_batches' passes, a bug is not retried."""
    try:
        state.result()
    except (OperationalError, InterfaceError):
        return True
    except Exception:
        return False
    return False


@task(
    name="dispatch-batch",
    task_run_name="dispatch-{channel}-s{shard}-{batch_no}",
    persist_result=False,
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=database_dropped,
)
def dispatch_batch(channel: str, ids: list[int], batch_no: int, shard: int = 0) -> DispatchReport:
    settings = get_settings()
    with _dispatcher(channel, f"{channel}-s{shard}-{batch_no}", rate_limiter(settings)) as dispatcher:
        return dispatcher.send_ids(ids)


@task(name="reconcile", task_run_name="reconcile-{channel}", persist_result=False)
def reconcile_task(
    channel: str, run_date: date, lease_seconds: int | None = None, settle_seconds: int | None = None
) -> dict:
    """Resolve the channel's messages in doubt (unknown, or claims past their lease) first."""
    settings = get_settings()
    with _dispatcher(channel, f"{channel}-reconcile") as dispatcher:
        report = reconcile_in_doubt(
            dispatcher,
            run_date,
            lease=timedelta(seconds=lease_seconds or settings.claim_lease_seconds),
            settle=timedelta(seconds=settle_seconds) if settle_seconds is not None else None,
        )
    return vars(report)


@task(name="funnel", persist_result=False)
def funnel_task(run_date: date) -> list[dict]:
    funnel = compute(_engine(), run_date)
    rows = funnel.rows()
    create_table_artifact(
        table=rows,
        key=f"funnel-{run_date.isoformat()}",
        description=f"Outreach funnel for {run_date.isoformat()} (counts only)",
    )
    create_table_artifact(
        table=lifecycle(_engine(), run_date).records(),
        key=f"delivery-status-{run_date.isoformat()}",
        description=f"Delivery lifecycle per channel and offer for {run_date.isoformat()} (counts only)",
    )
    return rows


@task(name="campaigns", persist_result=False)
def campaigns_task(run_date: date) -> dict:
    """Per campaign that ran today: its funnel (table) and its results so far (Markdown) as artifacts."""
    engine = _engine()
    offers = load_offers(get_settings().offers_file)
    ran = {}
    for name, rows in campaign_funnels(engine, run_date).items():
        create_table_artifact(
            table=rows, key=f"campaign-{name}-funnel", description=f"Campaign {name} on {run_date} (counts)"
        )
        report = build_report(engine, name, offers, as_of=run_date)
        create_markdown_artifact(
            markdown=report.to_markdown(),
            key=f"campaign-{name}",
            description=f"Campaign {name}: results so far",
        )
        ran[name] = sum(int(r["count"]) for r in rows if r["section"] == "funnel")
    return ran


@task(name="call-tasks", persist_result=False)
def call_tasks_task(run_date: date, carry_days: int) -> int:
    """Expire tasks whose calling day is over (they never pile up), then turn the call messages
    handed to the call list into agents' tasks (idempotent)."""
    expire_tasks(_engine(), run_date)
    return sum(create_tasks(_engine(), run_date - timedelta(days=back)) for back in range(carry_days, -1, -1))


@task(name="print-batches", persist_result=False)
def print_batches_task(run_date: date, carry_days: int) -> int:
    """Regroup each recent day's letters into postcode-sorted print batches with manifests."""
    settings = get_settings()
    if settings.backend_for("letter") != "outbox":
        return 0
    days = [run_date - timedelta(days=back) for back in range(carry_days, -1, -1)]
    return sum(len(build_print_batches(settings.outbox_dir, d, settings.letter_batch_size)) for d in days)


@task(name="unfinished", persist_result=False)
def unfinished_task(run_date: date, carry_days: int) -> dict[str, int]:
    with session_scope(_engine()) as session:
        return unfinished(session, run_date, datetime.now(UTC), carry_days)


def send_channels(
    day: date, channels: list[str], shard: int = 0, shards: int = 1
) -> dict[str, DispatchReport]:
    """Every due batch of ``channels`` (of one shard) as task runs on the flow's thread pool,
    through the core's one dispatch driver (outreach.sending.send_batches)."""
    settings = get_settings()
    return send_batches(
        _engine(),
        day,
        channels,
        lambda channel, ids, n: dispatch_batch.submit(channel, ids, n, shard),
        batch_size=settings.batch_size,
        carry_days=settings.carry_days,
        shard=shard,
        shards=shards,
    )


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


class DayIncomplete(RunIncomplete):
    """Messages of the day are left (a shard died, a transient failure, claims of a dead worker):
    the run ends failed, and a rerun of the day takes over what is left."""


@flow(
    name="dispatch-due",
    flow_run_name="dispatch-due-{run_date}",
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    log_prints=False,
)
def dispatch_due(
    run_date: str | None = None,
    shards: int = 1,
    lease_seconds: int | None = None,
    settle_seconds: int | None = None,
    shard_deployment: str = SHARD_DEPLOYMENT,
    shard_timeout_seconds: int = 4 * 3600,
) -> dict:
    """Send every message that is due now: today's plan and held ones whose window has opened.

    The daily flow runs it once; the `dispatch-due` deployment runs it through the day so that
    messages held for quiet hours go out when their window opens. Ends failed (DayIncomplete),
    naming what is left, when a shard did not complete or a due message is still planned,
    claimed or in doubt; a rerun takes over. See daily_outreach for the parameters.
    """
    logger = get_run_logger()
    check_shards(0, shards)
    day = date.fromisoformat(run_date) if run_date else bank_today()
    settings = get_settings()
    check_rate_limits(settings)  # missing limits fail here, before anything is claimed
    with day_lock(_engine(), day):  # re-entrant under daily-outreach; else one dispatch of a day at a time
        for channel in KINDS:
            reconcile_task(channel, day, lease_seconds, settle_seconds)
        runs = start_shards(day, shards, shard_deployment) if shards > 1 else []
        local = [c for c in KINDS if c not in SHARDED] if runs else list(KINDS)
        total = DispatchReport()
        for report in send_channels(day, local).values():
            total.add(report)
        tasks = call_tasks_task(day, settings.carry_days)
        batches = print_batches_task(day, settings.carry_days)
        shard_states = wait_for_shards(runs, shard_timeout_seconds) if runs else {}
        logger.info(
            "dispatch here: claimed=%d sent=%d failed=%d unknown=%d requeued=%d cancelled=%d "
            "call_tasks=%d; shards: %s",
            total.claimed,
            total.sent,
            total.failed,
            total.unknown,
            total.requeued,
            total.cancelled,
            tasks,
            shard_states or "none",
        )
        if total.held_paused:
            logger.warning("%d messages held back: their campaign is paused", total.held_paused)
        failed_shards = {name: state for name, state in shard_states.items() if state != "COMPLETED"}
        left = unfinished_task(day, settings.carry_days)
        if failed_shards or left:
            raise DayIncomplete(
                f"dispatch of {day.isoformat()} not finished: messages left {left or 'none'}, shards not "
                f"completed {failed_shards or 'none'}. Run the day again: it reconciles claims older than "
                "the lease and messages in doubt with the provider, then sends what is left (nothing twice)."
            )
        return {**vars(total), "call_tasks": tasks, "print_batches": batches, "shards": shard_states}


def bank_today() -> date:
    """The bank's calendar day (Amsterdam), not the server's UTC date."""
    zone = load_offers(get_settings().offers_file).policy.default_timezone
    return datetime.now(ZoneInfo(zone)).date()


@flow(name="daily-outreach", flow_run_name="daily-outreach-{run_date}", log_prints=False)
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
    shard_timeout_seconds: how long to wait for the shard runs.
    """
    logger = get_run_logger()
    check_shards(0, shards)
    day = date.fromisoformat(run_date) if run_date else bank_today()
    check_rate_limits(get_settings())  # before candidates and decisions, not only before sending
    with day_lock(_engine(), day):  # a second run of the day stops here, having written nothing
        loaded = load_candidates_task(day, candidates_file)
        logger.info("candidates: %s", {k: v for k, v in loaded.items() if isinstance(v, int)})
        for problem in loaded.get("campaigns", {}).get("invalid", []):
            logger.error("campaign file left out: %s", problem)
        plan = decide_task(day)
        logger.info("plan: %s", plan)
        signal_planned_task(day, plan)
        completed = False
        try:
            dispatched = dispatch_due(
                day.isoformat(),
                shards,
                lease_seconds,
                settle_seconds,
                shard_deployment,
                shard_timeout_seconds,
            )
            completed = True
        finally:
            funnel_task(day)  # the funnel says what was done, also when something is left
            signal_day_end_task(day, completed)  # failure rates also (above all) when something is left
        campaigns = campaigns_task(day)
    return {
        "run_date": day.isoformat(),
        "candidates": loaded,
        "plan": plan,
        "dispatch": dispatched,
        "campaigns": campaigns,
    }
