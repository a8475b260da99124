"""Shards, the rate limiter's place in dispatch, and what the production files declare; fast tests
(the real cluster is tests/test_scale_cluster.py)."""

from __future__ import annotations

import inspect
import zlib
from datetime import UTC, date, datetime, timedelta
from importlib import import_module
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select, update

from channels import load_channel
from outreach import ledger
from outreach.campaigns.tables import CampaignAssignment, CampaignRecord
from outreach.completion import unfinished
from outreach.config import Settings, load_offers
from outreach.db import session_scope
from outreach.dispatch import Dispatcher
from outreach.models import Decision, Message
from outreach.planning import decide_day
from outreach.sharding import BUCKETS, check, shard_bucket, shard_of
from tests.cluster import window_excess
from tests.factories import add_candidates, add_customers, customer
from tests.fixture_files import OFFERS_FILE

REPO = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 18)
NOON = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)


def plan(engine, n: int) -> None:
    add_customers(engine, *[customer(f"S{i}") for i in range(n)])
    add_candidates(engine, DAY, *[(f"S{i}", "KIDS_SAVINGS") for i in range(n)])
    decide_day(engine, DAY, load_offers(OFFERS_FILE), now=NOON)


def due(engine, shard: int = 0, shards: int = 1) -> list[int]:
    with session_scope(engine) as session:
        return ledger.due_ids(session, DAY, "email", NOON, shard=shard, shards=shards)


def test_the_bucket_is_a_stable_crc32_of_the_customer_id_not_a_salted_hash():
    # a fixed value: the same on every machine, process and Python version (hash() is salted)
    assert shard_bucket("C1") == zlib.crc32(b"C1") % BUCKETS == 3587
    assert shard_of("C1", 4) == 3
    with pytest.raises(ValueError, match="shards must be between 1"):
        check(0, 0)
    with pytest.raises(ValueError, match="shard must be between 0 and 2"):
        check(3, 3)


def test_shards_split_a_day_into_disjoint_parts_that_cover_it(engine):
    plan(engine, 120)
    whole = due(engine)
    assert len(whole) == 120
    parts = [due(engine, shard, 3) for shard in range(3)]
    assert sorted(sum(parts, [])) == sorted(whole)  # every message in exactly one shard
    assert all(len(part) > 15 for part in parts)  # spread, not all in one
    with session_scope(engine) as session:
        owner = dict(session.execute(select(Message.id, Message.customer_id)).all())
    for shard, part in enumerate(parts):  # the SQL condition and the Python function agree
        assert {shard_of(owner[mid], 3) for mid in part} == {shard}


class RecordingLimiter:
    """Grants every request, noting how many messages of the day were claimed at that moment."""

    def __init__(self, engine, burst: int, fail_after: int | None = None) -> None:
        self.engine, self.burst, self.fail_after = engine, burst, fail_after
        self.calls: list[tuple[str, int, int]] = []

    def slice_size(self, channel: str) -> int | None:
        return self.burst if channel == "email" else None

    def acquire(self, channel: str, count: int) -> None:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("limit deleted")
        with session_scope(self.engine) as session:
            claimed = session.scalar(select(func.count()).where(Message.status != "planned"))
        self.calls.append((channel, count, claimed))


def dispatcher(engine, tmp_path, limiter) -> Dispatcher:
    settings = Settings(database_url=str(engine.url), outbox_dir=tmp_path / "outbox")
    channel = load_channel("email", "outbox", outbox_dir=settings.outbox_dir)
    return Dispatcher(engine, settings, load_offers(OFFERS_FILE), channel, "w1", limiter=limiter)


def test_under_a_limit_each_slice_takes_its_slots_before_it_claims(engine, tmp_path):
    plan(engine, 20)
    limiter = RecordingLimiter(engine, burst=7)
    report = dispatcher(engine, tmp_path, limiter).send_ids(due(engine))
    assert report.sent == 20
    # slices of the burst; at each acquisition only the earlier slices had been claimed
    assert limiter.calls == [("email", 7, 0), ("email", 7, 7), ("email", 6, 14)]


def test_a_limiter_that_fails_leaves_the_rest_planned_not_claimed(engine, tmp_path):
    plan(engine, 20)
    limiter = RecordingLimiter(engine, burst=7, fail_after=1)
    with pytest.raises(RuntimeError, match="limit deleted"):
        dispatcher(engine, tmp_path, limiter).send_ids(due(engine))
    with session_scope(engine) as session:
        statuses = dict(session.execute(select(Message.status, func.count()).group_by(Message.status)).all())
    assert statuses == {"sent": 7, "planned": 13}  # nothing left claimed: no lease to wait for


def test_unfinished_counts_what_dispatch_has_not_finished_with(engine, tmp_path):
    plan(engine, 7)
    ids = due(engine)
    with session_scope(engine) as session:
        assert unfinished(session, DAY, NOON) == {"planned": 7}
        session.execute(update(Message).where(Message.id == ids[0]).values(status="sending"))
        session.execute(update(Message).where(Message.id == ids[1]).values(status="unknown"))
        session.execute(update(Message).where(Message.id == ids[2]).values(status="sent"))
        later = NOON + timedelta(hours=3)  # a held message is not due before its release
        session.execute(update(Message).where(Message.id == ids[3]).values(not_before=later))
        # a message of a paused campaign waits on purpose: not "left"
        paused = session.scalar(
            select(Decision.candidate_id)
            .join(Message, Message.decision_id == Decision.id)
            .where(Message.id == ids[4])
        )
        session.add(
            CampaignRecord(
                name="winter", owner="m", file="w.yaml", definition={}, paused=True, synced_at=NOON
            )
        )
        session.add(
            CampaignAssignment(
                campaign="winter", candidate_id=paused, customer_id="S4", offer_code="KIDS_SAVINGS",
                assigned_on=DAY, arm="treatment",
            )
        )  # fmt: skip
    with session_scope(engine) as session:
        assert unfinished(session, DAY, NOON) == {"planned": 2, "sending": 1, "unknown": 1}
        assert unfinished(session, DAY, later) == {"planned": 3, "sending": 1, "unknown": 1}
        # the carry window: the day after, with carry_days=1, the same messages are still left
        assert unfinished(session, DAY + timedelta(days=1), later, carry_days=1)["sending"] == 1
        assert unfinished(session, DAY + timedelta(days=1), later) == {}


def test_the_rate_window_check_catches_a_burst_and_passes_a_steady_flow():
    steady = [(i / 100, 1) for i in range(1000)]  # 100/s for 10 s
    assert window_excess(steady, burst=50, rate=100, window=1.0, slack=0.5)[0] <= 150
    count, allowed, _ = window_excess(steady, burst=50, rate=100, window=1.0, slack=0.5)
    assert count <= allowed
    burst = steady + [(5.0, 400)]  # 400 messages in one request at t=5 s
    count, allowed, start = window_excess(burst, burst=50, rate=100, window=1.0, slack=0.5)
    assert count > allowed and 4.0 < start <= 5.0


def test_prefect_yaml_deployments_point_at_real_flows_with_their_parameters():
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    assert {"daily", "dispatch-shard"} <= set(deployments)
    for deployment in deployments.values():
        path, name = deployment["entrypoint"].split(":")
        flow = getattr(import_module(path.removesuffix(".py").replace("/", ".")), name)
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(deployment.get("parameters") or {}) <= accepted, deployment["name"]
        assert deployment["work_pool"]["name"] == "outreach"
    assert deployments["daily"]["schedules"][0]["timezone"] == "Europe/Amsterdam"
    from flows.daily import SHARD_DEPLOYMENT

    flow_name, deployment_name = SHARD_DEPLOYMENT.split("/")
    assert deployment_name in deployments
    assert import_module("flows.shard").dispatch_shard.name == flow_name


def test_the_automation_file_is_valid_for_prefect():
    from prefect.events.schemas.automations import AutomationCore

    items = yaml.safe_load((REPO / "deploy" / "automations.yaml").read_text())["automations"]
    automation = AutomationCore.model_validate(items[0])
    assert automation.actions[0].type == "change-flow-run-state"
    assert automation.trigger.within.total_seconds() >= 90  # three heartbeats of the 30 s minimum
