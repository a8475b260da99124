"""The `daily-outreach` flow: a thin Prefect wrapper over the core's steps.

A task is a batch of messages, never one message: the ledger, not Prefect, tracks each message.
Parameters are a date and a file path, never personal data (Prefect stores them in clear).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from channels import KINDS, load_channel
from outreach.batches import due_batches
from outreach.config import get_settings, load_offers
from outreach.db import engine_for
from outreach.dispatch import Dispatcher, DispatchReport
from outreach.funnel import compute
from outreach.planning import decide_day
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
    adapter = load_channel(channel, settings.backend_for(channel), outbox_dir=settings.outbox_dir)
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
    adapter = load_channel(channel, settings.backend_for(channel), outbox_dir=settings.outbox_dir)
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
    return rows


def _workers() -> int:
    return get_settings().max_workers


@flow(
    name="daily-outreach",
    flow_run_name="daily-outreach-{run_date}",
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    log_prints=False,
)
def daily_outreach(run_date: str | None = None, candidates_file: str | None = None) -> dict:
    """Pull the day's candidates, decide, plan the ledger, send every channel in batches, report."""
    logger = get_run_logger()
    day = date.fromisoformat(run_date) if run_date else datetime.now(UTC).date()
    settings = get_settings()
    loaded = load_candidates_task(day, candidates_file)
    logger.info("candidates: %s", loaded)
    plan = decide_task(day)
    logger.info("plan: %s", plan)
    total = DispatchReport()
    now = datetime.now(UTC)
    for channel in KINDS:
        reconcile_task(channel, day)
        batches = due_batches(_engine(), day, channel, now, settings.batch_size)
        futures = [dispatch_batch.submit(channel, ids, n) for n, ids in enumerate(batches)]
        for future in futures:
            total.add(future.result())
    logger.info(
        "dispatch: claimed=%d sent=%d failed=%d unknown=%d requeued=%d cancelled=%d",
        total.claimed,
        total.sent,
        total.failed,
        total.unknown,
        total.requeued,
        total.cancelled,
    )
    funnel_task(day)
    return {"run_date": day.isoformat(), "candidates": loaded, "plan": plan, "dispatch": vars(total)}
