"""The built-in payment signals: candidates derived set-based (SQL window functions, on SQLite and
PostgreSQL) from the ``transactions`` table. Each candidate names the transaction that triggered it.

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
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import groupby
from operator import attrgetter
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Select, and_, case, func, literal, or_, select

from outreach.models import Transaction

BANK_TIMEZONE = ZoneInfo("Europe/Amsterdam")
AIRPORT_WORDS = (
    "schiphol",
    "airport",
    "luchthaven",
    "flughafen",
    "aeroport",
    "aeropuerto",
    "aeroporto",
    "lotnisko",
    "havalimani",
)
SVB_NAMES = ("sociale verzekeringsbank", "svb")
AIRLINE_MCC = ("3000", "3299")  # the airline range of merchant category codes
AIRLINE_MCC_EXTRA = "4511"  # airlines and air carriers not elsewhere classified
ATM_MCC = "6011"
CHILD_BENEFIT_PER_CHILD = Decimal("280")  # roughly one child's quarterly kinderbijslag

t = Transaction.__table__


@dataclass
class PaymentSignals:
    engine: Engine
    lookback_days: int = 3
    balance_threshold: Decimal = Decimal("25000")
    invest_threshold: Decimal = Decimal("100000")
    airport_words: tuple[str, ...] = AIRPORT_WORDS
    chunk_rows: int = 5000
    name: ClassVar[str] = "payment_signals"

    def __post_init__(self) -> None:
        if self.lookback_days < 1:
            raise ValueError("lookback_days must be at least 1")
        self.balance_threshold = Decimal(self.balance_threshold)
        self.invest_threshold = Decimal(self.invest_threshold)

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
        counterparty = func.lower(func.coalesce(t.c.counterparty_name, ""))
        return self._latest_per_customer(
            (
                t.c.booked_at >= start,
                t.c.booked_at < end,
                t.c.amount > 0,
                or_(counterparty.like(f"%{SVB_NAMES[0]}%"), counterparty == SVB_NAMES[1]),
                func.lower(func.coalesce(t.c.description, "")).like("%kinderbijslag%"),
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
        at_airport = or_(*(place.like(f"%{word}%") for word in self.airport_words))
        airport_atm = and_(t.c.mcc == ATM_MCC, at_airport)
        airline = or_(t.c.mcc.between(*AIRLINE_MCC), t.c.mcc == AIRLINE_MCC_EXTRA)
        kind = case((t.c.mcc == ATM_MCC, "airport_atm"), else_="airline_ticket").label("kind")
        return self._latest_per_customer(
            (t.c.booked_at >= start, t.c.booked_at < end, t.c.amount < 0, or_(airport_atm, airline)),
            kind,
        )

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
    @staticmethod
    def _candidate(row, run_date: date, offer: str, trigger: str, score: float) -> dict[str, Any]:
        return {
            "customer_id": row.customer_id,
            "offer_code": offer,
            "trigger": trigger,
            "trigger_ref": row.transaction_id,
            "score": round(min(1.0, max(0.0, score)), 4),
            "candidate_date": run_date,
        }

    def _kids(self, row, run_date: date) -> list[dict[str, Any]]:
        children = max(1, round(Decimal(row.amount) / CHILD_BENEFIT_PER_CHILD))
        return [self._candidate(row, run_date, "KIDS_SAVINGS", "child_benefit", 0.6 + 0.1 * children)]

    def _balance(self, crossings: list, run_date: date) -> list[dict[str, Any]]:
        """One customer's crossings, newest first: the latest of each threshold triggers."""
        found = []
        low = next((row for row in crossings if row.crossed_low), None)
        if low is not None:
            above = (Decimal(str(low.balance)) - self.balance_threshold) / (3 * self.balance_threshold)
            score = 0.5 + 0.5 * min(1.0, float(above))
            found.append(self._candidate(low, run_date, "SAVINGS_BOOST", "large_balance", score))
        high = next((row for row in crossings if row.crossed_high), None)
        if high is not None:
            above = (Decimal(str(high.balance)) - self.invest_threshold) / (4 * self.invest_threshold)
            score = 0.5 + 0.5 * min(1.0, float(above))
            found.append(self._candidate(high, run_date, "INVEST_CALL", "very_large_balance", score))
        return found

    def _travel(self, row, run_date: date) -> list[dict[str, Any]]:
        spent = float(-Decimal(row.amount))
        if row.kind == "airline_ticket":
            score = 0.6 + 0.3 * min(1.0, spent / 1000)
        else:
            score = 0.5 + 0.3 * min(1.0, spent / 500)
        return [
            self._candidate(row, run_date, "TRAVEL_INSURANCE", row.kind, score),
            self._candidate(row, run_date, "CREDIT_CARD", row.kind, score - 0.1),
        ]
