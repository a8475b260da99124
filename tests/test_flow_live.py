"""The ``live-offers`` flow on a Prefect test server: consumes from the real broker, reports its
counts as an artifact (no customer in it) and stops on its own time limit with a result."""

# ruff: noqa: F811 - the fixture imported from tests.nats_kit is a parameter here

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from outreach.config import get_settings
from tests.factories import add_customers, customer
from tests.fixture_files import OFFERS_FILE
from tests.nats_kit import stream  # noqa: F401
from tests.test_live_jetstream import REPO, publish, withdrawal

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def test_live_offers_flow_consumes_reports_and_stops(
    prefect_server, sqlite_url, tmp_path, stream, monkeypatch
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.live import live_offers
    from outreach.db import make_engine

    engine = make_engine(sqlite_url)
    add_customers(engine, customer("C1"))
    # stamped now: inside its relevance window whenever the suite runs (quiet hours may hold it)
    asyncio.run(publish(stream, [withdrawal("T1", "C1", datetime.now(UTC)), b"{broken"]))
    for name, value in {
        "OUTREACH_DATABASE_URL": sqlite_url,
        "OUTREACH_OUTBOX_DIR": str(tmp_path / "outbox"),
        "OUTREACH_OFFERS_FILE": str(OFFERS_FILE),
        "OUTREACH_TEMPLATES_DIR": str(REPO / "templates"),
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = asyncio.run(
            live_offers(
                stream=stream.stream,
                subject=stream.subject,
                durable=stream.durable,
                report_seconds=0.5,
                max_seconds=6,
            )
        )
    finally:
        get_settings.cache_clear()
    assert (result["events"], result["triggering"], result["dead_lettered"]) == (2, 1, {"bad_json": 1})
    assert sum(result["decisions"].values()) == 2  # travel insurance and credit card, each decided
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["live-offers"]))
        )[:1]
    table = str(artifact.data)
    assert "events_per_second" in table and "bad_json 1" in table and "C1" not in table
    engine.dispose()
