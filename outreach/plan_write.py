"""Store a day's decisions and plan their ledger rows in bulk, inside the caller's transaction.

A heavy day is a million decisions. Python dicts through SQLAlchemy executemany took minutes and
held every row twice in memory; here the rows go straight from the Polars frame to the database in
chunks of ``CHUNK`` rows: ``COPY ... FROM STDIN`` on PostgreSQL (psycopg), one ``executemany`` of
plain tuples on SQLite. Both run on the *same* connection and transaction as the ledger planning
after them, so a crash leaves either both or neither. (The ADBC drivers would need their own
connection: a second transaction, and on SQLite a second copy of the SQLite library in the process,
see outreach.sqlite_arrow.)

Values are written exactly as SQLAlchemy would bind them: on SQLite dates and timestamps are the
strings of SQLAlchemy's own bind processors; on PostgreSQL ISO-8601 with the UTC offset, so a
``timestamptz`` keeps the instant.

The unique ``decisions.candidate_id`` still guards against a second run deciding the same candidate:
a duplicate aborts the COPY / insert and the whole transaction (raised as SQLAlchemy's
``IntegrityError``, as the executemany did).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    DateTime,
    MetaData,
    SmallInteger,
    Table,
    bindparam,
    exc,
    insert,
    text,
)
from sqlalchemy.types import TypeEngine

from outreach.models import Decision
from outreach.sharding import shard_bucket

CHUNK = 50_000  # rows per COPY write / executemany: bounds the memory the write adds
DECISION_COLUMNS = (
    "candidate_id",
    "customer_id",
    "offer_code",
    "outcome",
    "reason",
    "channel",
    "legal_basis",
    "detail",
    "release_at",
)

# the ledger rows still to plan: decision id and shard bucket (CRC-32, which neither database has)
STAGE = Table(
    "plan_ledger_stage",
    MetaData(),
    Column("decision_id", BigInteger, primary_key=True),
    Column("shard", SmallInteger),
    prefixes=["TEMPORARY"],
)


def write_decisions(conn: Connection, frame: pl.DataFrame, run_date: date, decided_at: datetime) -> int:
    """Insert one ``decisions`` row per frame row (the engine's output columns); returns the count."""
    if frame.is_empty():
        return 0
    rows = frame.select(DECISION_COLUMNS).with_columns(_release_values(conn, frame["release_at"]))
    columns = (*DECISION_COLUMNS, "decision_date", "decided_at")
    constants = (_bound(conn, Date(), run_date), _bound_ts(conn, decided_at))
    with _integrity_errors(conn):
        if _psycopg(conn):
            _copy(conn, "decisions", columns, rows.with_columns(*_literals(columns[-2:], constants)))
        elif conn.dialect.name == "sqlite":
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO decisions ({', '.join(columns)}) VALUES ({marks})"
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                for chunk in rows.iter_slices(CHUNK):
                    cursor.executemany(sql, (row + constants for row in chunk.iter_rows()))
            finally:
                cursor.close()
        else:  # any other driver: SQLAlchemy's executemany, still chunked
            for chunk in rows.iter_slices(5000):
                conn.execute(
                    insert(Decision.__table__),
                    [
                        {
                            **row,
                            "release_at": row["release_at"] and datetime.fromisoformat(row["release_at"]),
                            "decision_date": run_date,
                            "decided_at": decided_at,
                        }
                        for row in chunk.to_dicts()
                    ],
                )
    return rows.height


def plan_ledger(conn: Connection, run_date: date, stamp: datetime) -> int:
    """One ``messages`` row per planned or held decision of ``run_date`` that has none yet.

    Set-based: the missing decisions are read in chunks, their shard bucket (CRC-32, which neither
    database has) is staged in a temporary table, and one INSERT ... SELECT joins them to the
    decisions; a held decision's ``release_at`` becomes its message's ``not_before``. Decisions that
    already have a ledger row are left alone, so this also repairs decisions stored without ledger
    rows (e.g. after a crash of an older version).
    """
    # a failed run's stage is gone with its rollback on PostgreSQL; SQLite may keep it on a pooled connection
    conn.execute(text("DROP TABLE IF EXISTS plan_ledger_stage"))
    STAGE.create(conn)
    missing = conn.execute(  # streamed: a server-side cursor on PostgreSQL
        text(
            "SELECT d.id, d.customer_id FROM decisions d"
            " WHERE d.decision_date = :day AND d.outcome IN ('planned', 'held')"
            " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.decision_id = d.id)"  # ix_messages_decision_id
        ).bindparams(bindparam("day", run_date, type_=Date())),
        execution_options={"yield_per": CHUNK},
    )
    staged = 0
    for part in missing.partitions():
        staged += _stage(conn, [(decision_id, shard_bucket(customer)) for decision_id, customer in part])
    if not staged:
        STAGE.drop(conn)
        return 0
    insert_ledger = text(
        "INSERT INTO messages (idempotency_key, decision_id, run_date, customer_id, offer_code,"
        " channel, shard, status, not_before, attempts, created_at, updated_at)"
        " SELECT :prefix || d.customer_id || ':' || d.offer_code || ':' || d.channel, d.id, :day,"
        " d.customer_id, d.offer_code, d.channel, s.shard, 'planned',"
        " CASE WHEN d.outcome = 'held' THEN d.release_at END, 0, :stamp, :stamp"
        " FROM plan_ledger_stage s JOIN decisions d ON d.id = s.decision_id"
        " ORDER BY d.id"  # ledger ids in decision order, as before: dispatch sends in id order
    ).bindparams(
        bindparam("prefix", f"{run_date.isoformat()}:"),  # ledger.idempotency_key, in SQL
        bindparam("day", run_date, type_=Date()),
        bindparam("stamp", stamp, type_=DateTime(timezone=True)),
    )
    planned = conn.execute(insert_ledger).rowcount
    STAGE.drop(conn)
    return planned


def _release_values(conn: Connection, release: pl.Series) -> pl.Series:
    """The engine's ISO release times as the driver takes them (SQLite: SQLAlchemy's strings)."""
    distinct = [v for v in release.unique().to_list() if v is not None]  # one per zone and channel
    bound = {v: _bound_ts(conn, datetime.fromisoformat(v)) for v in distinct}
    return release.replace_strict(bound, default=None, return_dtype=pl.Utf8).alias("release_at")


def _stage(conn: Connection, rows: list[tuple]) -> int:
    if not rows:
        return 0
    columns = ("decision_id", "shard")
    if _psycopg(conn):
        frame = pl.DataFrame(rows, schema={"decision_id": pl.Int64, "shard": pl.Int64}, orient="row")
        _copy(conn, "plan_ledger_stage", columns, frame)
    elif conn.dialect.name == "sqlite":
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.executemany("INSERT INTO plan_ledger_stage VALUES (?, ?)", rows)
        finally:
            cursor.close()
    else:
        conn.execute(insert(STAGE), [dict(zip(columns, r, strict=True)) for r in rows])
    return len(rows)


def _copy(conn: Connection, table: str, columns: Iterable[str], frame: pl.DataFrame) -> None:
    """COPY the frame in as CSV, a chunk at a time (``\\N`` is NULL; every string is quoted)."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    with conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(sql) as copy:
        for chunk in frame.iter_slices(CHUNK):
            buffer = io.BytesIO()
            chunk.write_csv(buffer, include_header=False, null_value="\\N", quote_style="non_numeric")
            copy.write(buffer.getvalue())


def _psycopg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def _bound(conn: Connection, type_: TypeEngine, value: Any) -> Any:
    """``value`` as the driver receives it from SQLAlchemy (SQLite: its date/time strings)."""
    if conn.dialect.name == "sqlite":
        process = type_.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        return process(value) if process else value
    return value.isoformat()


def _bound_ts(conn: Connection, value: datetime) -> str:
    return _bound(conn, DateTime(timezone=True), value)


def _literals(names: Sequence[str], values: Sequence[Any]) -> list[pl.Expr]:
    return [pl.lit(v, dtype=pl.Utf8).alias(n) for n, v in zip(names, values, strict=True)]


class _integrity_errors:
    """Raise the driver's unique-key violations as ``sqlalchemy.exc.IntegrityError``."""

    def __init__(self, conn: Connection) -> None:
        self.module = conn.dialect.dbapi

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, _tb) -> bool:
        if error is not None and isinstance(error, self.module.IntegrityError):
            raise exc.IntegrityError("bulk insert into decisions", None, error) from error
        return False
