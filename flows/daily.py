"""The `daily-outreach` flow: a thin Prefect wrapper over the core's steps.

A task is a batch of messages, never one message: the ledger, not Prefect, tracks each message.
Parameters are a date and a file path, never personal data (Prefect stores them in clear).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from channels import KINDS
from outreach.batches import due_batches
from outreach.calls.tasks import create_tasks
from outreach.campaigns.funnel import campaign_funnels
from outreach.campaigns.report import build_report
from outreach.channel_setup import open_channel
from outreach.config import get_settings, load_offers
from outreach.db import engine_for
from outreach.delivery_status import lifecycle
from outreach.dispatch import Dispatcher, DispatchReport
from outreach.funnel import compute
from outreach.planning import decide_day
from outreach.printing import build_print_batches
from outreach.sending import reconcile_in_doubt
from outreach.steps import load_day_candidates


def _engine():
    return engine_for(get_settings().database_url)


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
    task_run_name="dispatch-{channel}-{batch_no}",
    persist_result=False,
    retries=2,
    retry_delay_seconds=[2, 10],
)
def dispatch_batch(channel: str, ids: list[int], batch_no: int) -> DispatchReport:
    settings = get_settings()
    adapter = open_channel(settings, channel)
    try:
        dispatcher = Dispatcher(
            _engine(),
            settings,
            load_offers(settings.offers_file),
            adapter,
            worker=f"flow-{channel}-{batch_no}",
        )
        return dispatcher.send_ids(ids)
    finally:
        adapter.close()


@task(name="reconcile", task_run_name="reconcile-{channel}", persist_result=False)
def reconcile_task(channel: str, run_date: date) -> dict:
    """Resolve the channel's messages in doubt (unknown, or claims past their lease) first."""
    settings = get_settings()
    adapter = open_channel(settings, channel)
    try:
        dispatcher = Dispatcher(
            _engine(),
            settings,
            load_offers(settings.offers_file),
            adapter,
            worker=f"flow-{channel}-reconcile",
        )
        return vars(reconcile_in_doubt(dispatcher, run_date))
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
    """Turn the call messages handed to the call list into agents' tasks (idempotent)."""
    return sum(create_tasks(_engine(), run_date - timedelta(days=back)) for back in range(carry_days, -1, -1))


@task(name="print-batches", persist_result=False)
def print_batches_task(run_date: date, carry_days: int) -> int:
    """Regroup each recent day's letters into postcode-sorted print batches with manifests."""
    settings = get_settings()
    if settings.backend_for("letter") != "outbox":
        return 0
    days = [run_date - timedelta(days=back) for back in range(carry_days, -1, -1)]
    return sum(len(build_print_batches(settings.outbox_dir, d, settings.letter_batch_size)) for d in days)


@flow(
    name="dispatch-due",
    flow_run_name="dispatch-due-{run_date}",
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    log_prints=False,
)
def dispatch_due(run_date: str | None = None) -> dict:
    """Send every message that is due now: today's plan and held ones whose window has opened.

    The daily flow runs it once; the `dispatch-due` deployment runs it through the day so that
    messages held for quiet hours go out when their window opens.
    """
    logger = get_run_logger()
    day = date.fromisoformat(run_date) if run_date else bank_today()
    settings = get_settings()
    total = DispatchReport()
    now = datetime.now(UTC)
    for channel in KINDS:
        reconcile_task(channel, day)
        batches = due_batches(_engine(), day, channel, now, settings.batch_size, settings.carry_days)
        futures = [dispatch_batch.submit(channel, ids, n) for n, ids in enumerate(batches)]
        for future in futures:
            total.add(future.result())
    tasks = call_tasks_task(day, settings.carry_days)
    batches = print_batches_task(day, settings.carry_days)
    logger.info(
        "dispatch: claimed=%d sent=%d failed=%d unknown=%d requeued=%d cancelled=%d call_tasks=%d",
        total.claimed,
        total.sent,
        total.failed,
        total.unknown,
        total.requeued,
        total.cancelled,
        tasks,
    )
    if total.held_paused:
        logger.warning("%d messages held back: their campaign is paused", total.held_paused)
    return {**vars(total), "call_tasks": tasks, "print_batches": batches}


def bank_today() -> date:
    """The bank's calendar day (Amsterdam), not the server's UTC date."""
    zone = load_offers(get_settings().offers_file).policy.default_timezone
    return datetime.now(ZoneInfo(zone)).date()


@flow(name="daily-outreach", flow_run_name="daily-outreach-{run_date}", log_prints=False)
def daily_outreach(run_date: str | None = None, candidates_file: str | None = None) -> dict:
    """Pull the day's candidates, decide, plan the ledger, send every channel in batches, report."""
    logger = get_run_logger()
    day = date.fromisoformat(run_date) if run_date else bank_today()
    loaded = load_candidates_task(day, candidates_file)
    logger.info("candidates: %s", {k: v for k, v in loaded.items() if isinstance(v, int)})
    for problem in loaded.get("campaigns", {}).get("invalid", []):
        logger.error("campaign file left out: %s", problem)
    plan = decide_task(day)
    logger.info("plan: %s", plan)
    dispatched = dispatch_due(day.isoformat())
    funnel_task(day)
    campaigns = campaigns_task(day)
    return {
        "run_date": day.isoformat(),
        "candidates": loaded,
        "plan": plan,
        "dispatch": dispatched,
        "campaigns": campaigns,
    }
