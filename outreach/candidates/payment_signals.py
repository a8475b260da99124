"""The built-in payment signals: candidates derived set-based (SQL window functions, on SQLite and
PostgreSQL) from the ``transactions`` table. Each candidate names the transaction that triggered it.
What triggers which offer is configuration (``triggers.yaml`` beside the offers file, read through
outreach.triggers and shared with the live lane); by default:

- child benefit (kinderbijslag) credited by the SVB          → KIDS_SAVINGS
- the balance went above a threshold (default €25,000)       → SAVINGS_BOOST
  and above a higher one (default €100,000)                  → INVEST_CALL (calls are scarce)
- a cash withdrawal at an airport ATM, or an airline ticket  → TRAVEL_INSURANCE and CREDIT_CARD

A signal fires for transactions booked in the ``lookback_days`` before the run date (the bank's
calendar days, Europe/Amsterdam); the run date itself is not yet complete and is left for tomorrow.
A balance signal fires when the crossing transaction is in that window and the balance is still
above the threshold: a balance that has sat high for months already had its chance.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import groupby
from operator import attrgetter
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Select, and_, case, func, literal, or_, select

from outreach.models import Transaction
from outreach.triggers import Triggers, default_triggers

BANK_TIMEZONE = ZoneInfo("Europe/Amsterdam")

t = Transaction.__table__


@dataclass
class PaymentSignals:
    engine: Engine
    lookback_days: int = 3
    triggers: Triggers = field(default_factory=default_triggers)
    # overrides of the configured thresholds and place words (None: as configured)
    balance_threshold: Decimal | None = None
    invest_threshold: Decimal | None = None
    airport_words: tuple[str, ...] | None = None
    chunk_rows: int = 5000
    name: ClassVar[str] = "payment_signals"

    def __post_init__(self) -> None:
        if self.lookback_days < 1:
            raise ValueError("lookback_days must be at least 1")
        t_ = self.triggers
        self.balance_threshold = Decimal(self.balance_threshold or t_.large_balance.above)
        self.invest_threshold = Decimal(self.invest_threshold or t_.very_large_balance.above)
        self.airport_words = tuple(self.airport_words or t_.airport_atm.place_words)

    def window(self, run_date: date) -> tuple[datetime, datetime]:
        """[start, end) in UTC: the lookback days before the run date, midnight to midnight local."""
        start = datetime.combine(run_date - timedelta(days=self.lookback_days), time(), BANK_TIMEZONE)
        end = datetime.combine(run_date, time(), BANK_TIMEZONE)
        return start.astimezone(UTC), end.astimezone(UTC)

    def chunks(self, run_date: date) -> Iterator[list[dict[str, Any]]]:
        start, end = self.window(run_date)
        with self.engine.connect() as conn:
            conn = conn.execution_options(stream_results=True, yield_per=self.chunk_rows)
            for query, to_candidates in (
                (self.child_benefit_query(start, end), self._kids),
                (self.travel_query(start, end), self._travel),
            ):
                for partition in conn.execute(query).partitions():
                    yield [c for row in partition for c in to_candidates(row, run_date)]
            chunk: list[dict[str, Any]] = []
            rows = conn.execute(self.balance_query(start, end))
            for _customer, crossings in groupby(rows, key=attrgetter("customer_id")):
                chunk.extend(self._balance(list(crossings), run_date))
                if len(chunk) >= self.chunk_rows:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk

    # -- the set-based queries -------------------------------------------------------------
    @staticmethod
    def _latest_per_customer(where, *columns) -> Select:
        """The most recent matching transaction of each customer."""
        rank = func.row_number().over(
            partition_by=t.c.customer_id, order_by=(t.c.booked_at.desc(), t.c.transaction_id.desc())
        )
        inner = select(t.c.customer_id, t.c.transaction_id, t.c.amount, *columns, rank.label("rank"))
        inner = inner.where(*where).subquery()
        return (
            select(*(c for c in inner.c if c.name != "rank"))
            .where(inner.c.rank == 1)
            .order_by(inner.c.customer_id)
        )

    def child_benefit_query(self, start: datetime, end: datetime) -> Select:
        rule = self.triggers.child_benefit
        counterparty = func.lower(func.coalesce(t.c.counterparty_name, ""))
        description = func.lower(func.coalesce(t.c.description, ""))
        return self._latest_per_customer(
            (
                t.c.booked_at >= start,
                t.c.booked_at < end,
                t.c.amount > 0,
                or_(
                    *(counterparty.like(f"%{name}%") for name in rule.counterparty_contains),
                    *(counterparty == name for name in rule.counterparty_equals),
                ),
                or_(*(description.like(f"%{word}%") for word in rule.description_contains)),
            )
        )

    def travel_query(self, start: datetime, end: datetime) -> Select:
        place = func.lower(
            func.coalesce(t.c.description, "")
            + literal(" ")
            + func.coalesce(t.c.city, "")
            + literal(" ")
            + func.coalesce(t.c.counterparty_name, "")
        )
        atm, airline_rule = self.triggers.airport_atm, self.triggers.airline_ticket
        at_airport = or_(*(place.like(f"%{word}%") for word in self.airport_words))
        airport_atm = and_(t.c.mcc.in_(atm.mcc), at_airport)
        airline = or_(
            *(t.c.mcc.between(low, high) for low, high in airline_rule.mcc_ranges),
            *([t.c.mcc.in_(airline_rule.mcc)] if airline_rule.mcc else []),
        )
        # an ATM code in the airline list still counts as the airport withdrawal, as before
        kind = case((and_(t.c.mcc.in_(atm.mcc), at_airport), "airport_atm"), else_="airline_ticket").label(
            "kind"
        )
        where = [t.c.booked_at >= start, t.c.booked_at < end, t.c.amount < 0, or_(airport_atm, airline)]
        if atm.relevance_hours or airline_rule.relevance_hours:
            # a moment the live lane already acted on (sent, expired or too late) is not offered
            # again the next morning (docs/realtime.md); without the live lane the table is empty
            live = Transaction.metadata.tables["live_events"]
            where.append(~select(live.c.event_id).where(live.c.event_id == t.c.transaction_id).exists())
        return self._latest_per_customer(where, kind)

    def balance_query(self, start: datetime, end: datetime) -> Select:
        """Transactions inside the window that lifted a balance over either threshold, of customers
        still above the lower one, newest first per customer. Only customers with a credit in the
        window can have crossed upwards, so only their history is summed: one pass of window
        functions over it, no self-join."""
        low, high = self.balance_threshold, self.invest_threshold
        credited = select(t.c.customer_id).where(t.c.booked_at >= start, t.c.booked_at < end, t.c.amount > 0)
        oldest_first = (t.c.booked_at, t.c.transaction_id)
        running = (
            select(
                t.c.customer_id,
                t.c.transaction_id,
                t.c.booked_at,
                func.sum(t.c.amount)
                .over(partition_by=t.c.customer_id, order_by=oldest_first, rows=(None, 0))
                .label("balance"),
            )
            .where(t.c.booked_at < end, t.c.customer_id.in_(credited))
            .subquery()
        )
        r = running.c
        marked = select(
            running,
            func.lag(r.balance)
            .over(partition_by=r.customer_id, order_by=(r.booked_at, r.transaction_id))
            .label("before"),
            func.first_value(r.balance)
            .over(partition_by=r.customer_id, order_by=(r.booked_at.desc(), r.transaction_id.desc()))
            .label("current"),
        ).subquery()
        m = marked.c

        def crossed(threshold: Decimal):
            return and_(m.balance > threshold, or_(m.before.is_(None), m.before <= threshold))

        return (
            select(
                m.customer_id,
                m.transaction_id,
                m.current.label("balance"),
                and_(crossed(low), m.current > low).label("crossed_low"),
                and_(crossed(high), m.current > high).label("crossed_high"),
            )
            .where(m.booked_at >= start, m.current > low, or_(crossed(low), crossed(high)))
            .order_by(m.customer_id, m.booked_at.desc(), m.transaction_id.desc())
        )

    # -- rows to candidates, with a deterministic score in [0, 1] ---------------------------
    def _candidates(self, row, run_date: date, trigger: str, score: float) -> list[dict[str, Any]]:
        return [
            {
                "customer_id": row.customer_id,
                "offer_code": offer,
                "trigger": trigger,
                "trigger_ref": row.transaction_id,
                "score": offer_score,
                "candidate_date": run_date,
            }
            for offer, offer_score in self.triggers.candidates(trigger, score)
        ]

    def _kids(self, row, run_date: date) -> list[dict[str, Any]]:
        score = self.triggers.child_benefit.score(Decimal(row.amount))
        return self._candidates(row, run_date, "child_benefit", score)

    def _balance(self, crossings: list, run_date: date) -> list[dict[str, Any]]:
        """One customer's crossings, newest first: the latest of each threshold triggers."""
        found = []
        for flag, name, threshold in (
            ("crossed_low", "large_balance", self.balance_threshold),
            ("crossed_high", "very_large_balance", self.invest_threshold),
        ):
            row = next((r for r in crossings if getattr(r, flag)), None)
            if row is not None:
                rule = self.triggers.by_name()[name].model_copy(update={"above": threshold})
                found += self._candidates(row, run_date, name, rule.score(Decimal(str(row.balance))))
        return found

    def _travel(self, row, run_date: date) -> list[dict[str, Any]]:
        rule = self.triggers.airline_ticket if row.kind == "airline_ticket" else self.triggers.airport_atm
        return self._candidates(row, run_date, row.kind, rule.score.of(Decimal(row.amount)))
