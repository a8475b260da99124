"""The outcome rule end to end: two "not interested" answers recorded by call agents suppress the topic."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from outreach.calls import tasks
from outreach.calls.settings import CallSettings
from outreach.config import Offer
from outreach.db import session_scope
from outreach.models import Decision
from outreach.planning import decide_day
from tests.calls_support import (  # noqa: F401 (cheap_hashing is a fixture)
    OFFERS,
    Person,
    add_team_and_agents,
    call_day,
    cheap_hashing,
    dispatch_calls,
    plan_day,
)
from tests.factories import add_candidates

pytestmark = pytest.mark.usefixtures("cheap_hashing")
SETTINGS = CallSettings(max_attempts=3, retry_minutes=60)


def _answer(engine, day: date, agent: int, outcome: str) -> None:
    tasks.create_tasks_report(engine, day, offers=OFFERS, settings=SETTINGS)
    at = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    task_id = tasks.claim_next(engine, agent, now=at)
    assert task_id is not None
    tasks.record_outcome(engine, task_id, agent, outcome, now=at)


def test_two_not_interested_calls_suppress_the_topic(engine):
    team = add_team_and_agents(engine, "nl-1", "nl", 10, ["jan"])
    first, second = date(2026, 11, 24), date(2026, 12, 1)  # two Tuesdays
    call_day(engine, first, [Person("NI"), Person("ONCE")])
    _answer(engine, first, team["jan"], "not_interested")
    _answer(engine, first, team["jan"], "not_interested")  # ONCE says it once only
    plan_day(engine, second, [Person("NI")])
    dispatch_calls(engine, second)
    _answer(engine, second, team["jan"], "not_interested")

    later = date(2026, 12, 15)
    advice = Offer(code="ADVICE", product="advice", topic="investing", priority=3, channels=["call", "email"])
    savings = next(o for o in OFFERS.offers if o.code == "SAVINGS_BOOST")
    offers = OFFERS.model_copy(update={"offers": [*OFFERS.offers, advice]})
    add_candidates(engine, later, ("NI", "ADVICE", 0.9), ("NI", savings.code, 0.1), ("ONCE", "ADVICE"))
    decide_day(engine, later, offers, now=datetime(2026, 12, 15, 10, tzinfo=UTC))
    with session_scope(engine) as session:
        got = {
            (d.customer_id, d.offer_code): d.reason
            for d in session.scalars(select(Decision))
            if d.decision_date == later
        }
    assert got[("NI", "ADVICE")] == "not_interested_topic"  # investing: said no twice
    assert got[("NI", "SAVINGS_BOOST")] == "planned"  # other topics are fine
    assert got[("ONCE", "ADVICE")] == "planned"
