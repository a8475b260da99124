"""Prometheus metrics of the web service, served at ``/metrics`` in the text format.

Requests and latencies are labelled by route *template* (``/unsubscribe/{token}``), never by the
raw path, so tokens and ids never become labels. Webhook calls are counted by provider and result.
Messages by channel and status are read from the ledger at scrape time (one grouped count over
the ``ix_messages_day_status`` index, for the last few plan days only).

Several server processes (``outreach serve --workers N``): set ``PROMETHEUS_MULTIPROC_DIR`` to an
empty directory before start; prometheus-client then keeps each process's counters in files there
and any process answers a scrape with the sum (docs/operations.md).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from outreach.models import Message as LedgerMessage

log = logging.getLogger("outreach.web.metrics")

UNMATCHED = "<unmatched>"  # a path no route knows: one label, whatever the path was
# what a webhook call came to; "accepted"/"duplicate" count events, the refusals count calls
WEBHOOK_REFUSALS = {
    400: "bad-payload",
    403: "rejected-signature",
    413: "too-large",
    503: "not-configured",
}
OUTCOME_KEY = "outreach_webhook_outcome"  # request.state entry the webhook routes fill

REQUESTS = Counter(
    "outreach_http_requests",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "outreach_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WEBHOOK_EVENTS = Counter(
    "outreach_webhook_events",
    "Provider webhook events by provider and result (accepted, duplicate; refused calls count once)",
    ["provider", "result"],
)


def note_webhook_outcome(request: Request, accepted: int, duplicates: int) -> None:
    """What a verified webhook call recorded: the metrics middleware counts it once answered."""
    setattr(request.state, OUTCOME_KEY, (accepted, duplicates))


def _route_template(scope: Scope) -> str:
    route = scope.get("route")  # FastAPI puts the matched route into the scope
    return getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED


def _provider(scope: Scope, template: str) -> str | None:
    """The provider of a webhook route: its ``{provider}`` parameter or its template's second part."""
    parts = template.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "webhooks":
        return None
    if parts[1] == "{provider}":
        return str(scope.get("path_params", {}).get("provider", "unknown"))
    return parts[1]


class Metrics:
    """ASGI middleware: counts and times every HTTP request, and the webhook results."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    @staticmethod
    def _record(scope: Scope, status: int, seconds: float) -> None:
        template = _route_template(scope) if status != 404 else UNMATCHED
        method = scope.get("method", "GET")
        REQUESTS.labels(method, template, str(status)).inc()
        LATENCY.labels(method, template).observe(seconds)
        provider = _provider(scope, template)
        if provider is None or method != "POST":
            return
        outcome = scope.get("state", {}).get(OUTCOME_KEY)
        if 200 <= status < 300 and outcome is not None:
            accepted, duplicates = outcome
            if accepted:
                WEBHOOK_EVENTS.labels(provider, "accepted").inc(accepted)
            if duplicates:
                WEBHOOK_EVENTS.labels(provider, "duplicate").inc(duplicates)
        elif status >= 300:
            WEBHOOK_EVENTS.labels(provider, WEBHOOK_REFUSALS.get(status, "error")).inc()


class LedgerCollector(Collector):
    """Messages by channel and status over the last ``days`` plan days, counted at scrape time."""

    def __init__(self, engine_for: Callable[[], Engine], days: int, today: Callable[[], date]) -> None:
        self.engine_for = engine_for
        self.days = days
        self.today = today

    def collect(self) -> Iterator[GaugeMetricFamily]:
        messages = GaugeMetricFamily(
            "outreach_ledger_messages",
            f"Ledger messages of the last {self.days} plan days, by channel and status",
            labels=["channel", "status"],
        )
        up = GaugeMetricFamily("outreach_ledger_up", "1 if the ledger could be read at this scrape")
        since = self.today() - timedelta(days=self.days - 1)
        query = (
            select(LedgerMessage.channel, LedgerMessage.status, func.count())
            .where(LedgerMessage.run_date >= since)
            .group_by(LedgerMessage.channel, LedgerMessage.status)
        )
        try:
            with self.engine_for().connect() as conn:
                rows = conn.execute(query).all()
        except Exception as exc:  # a scrape must still answer: the outage shows as outreach_ledger_up 0
            log.warning("ledger metrics unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        for channel, status, n in rows:
            messages.add_metric([channel, status], n)
        up.add_metric([], 1)
        yield messages
        yield up


def _utc_today() -> date:
    return datetime.now(UTC).date()


def exposition(engine_for: Callable[[], Engine], ledger_days: int) -> Response:
    """The scrape answer: this process's (or all processes') metrics, then the ledger counts."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process_metrics = CollectorRegistry()
        multiprocess.MultiProcessCollector(process_metrics)
    else:
        process_metrics = REGISTRY
    ledger = CollectorRegistry(auto_describe=False)
    ledger.register(LedgerCollector(engine_for, ledger_days, _utc_today))
    body = generate_latest(process_metrics) + generate_latest(ledger)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
