"""Chunked, idempotent writes: new keys are inserted in one executemany, existing keys are left
alone or updated when their values changed, so importing the same file twice changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, any_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

CHUNK_ROWS = 5000


@dataclass(frozen=True)
class TableSpec:
    table: Table
    key: tuple[str, ...]  # what makes a row the same row
    lookup: tuple[str, ...]  # key columns (the first indexed) that find the chunk's existing rows
    update: tuple[str, ...] = ()  # columns rewritten when an existing row's values changed
    unique: bool = True  # the key is a unique constraint (insert with ON CONFLICT DO NOTHING)


@dataclass
class WriteCounts:
    inserted: int = 0
    updated: int = 0
    already_present: int = 0

    def add(self, other: WriteCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.already_present += other.already_present


def _norm(value: Any) -> Any:
    """Compare timestamps in UTC: SQLite hands them back naive (they are stored in UTC)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _insert_statement(conn: Connection, spec: TableSpec):
    dialect = conn.dialect.name
    if spec.unique and dialect == "postgresql":
        return pg_insert(spec.table).on_conflict_do_nothing(index_elements=list(spec.key))
    if spec.unique and dialect == "sqlite":
        return sqlite_insert(spec.table).on_conflict_do_nothing(index_elements=list(spec.key))
    return insert(spec.table)


def one_of(conn: Connection, column, values: list[Any]):
    """``column IN values``; on PostgreSQL as ``= ANY(array)``: one parameter, not thousands."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def _copy_insert(conn: Connection, spec: TableSpec, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: COPY the chunk into a temporary table, then INSERT ... ON CONFLICT DO NOTHING.
    An executemany of INSERTs runs at a few thousand rows a second there; COPY is ten times that.
    It runs on the same connection, inside the caller's transaction."""
    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)
    table = f'"{spec.table.name}"'
    stage = f'"_stage_{spec.table.name}"'
    conflict = " ON CONFLICT DO NOTHING" if spec.unique else ""
    with conn.connection.driver_connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {stage}")
        cursor.execute(
            f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {names} FROM {table} WITH NO DATA"
        )
        with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage}{conflict}")
        cursor.execute(f"DROP TABLE {stage}")


def write_chunk(conn: Connection, spec: TableSpec, rows: list[dict[str, Any]]) -> WriteCounts:
    counts = WriteCounts()
    if not rows:
        return counts
    unique_rows: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = tuple(_norm(row[c]) for c in spec.key)
        earlier = unique_rows.get(key)
        if earlier is not None:  # the same key twice in one chunk: the later row wins
            changed = any(earlier[c] != row[c] for c in spec.update)
            counts.updated += changed
            counts.already_present += not changed
        unique_rows[key] = row

    table = spec.table
    conditions = [
        one_of(conn, table.c[column], sorted({row[column] for row in unique_rows.values()}, key=str))
        for column in spec.lookup
    ]
    columns = [table.c[c] for c in (*spec.key, *spec.update)]
    existing: dict[tuple, tuple] = {}
    for found in conn.execute(select(*columns).where(*conditions)):
        values = tuple(_norm(v) for v in found)
        existing[values[: len(spec.key)]] = values[len(spec.key) :]

    to_insert: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    for key, row in unique_rows.items():
        if key not in existing:
            to_insert.append(row)
        elif spec.update and existing[key] != tuple(_norm(row[c]) for c in spec.update):
            to_update.append(row)
        else:
            counts.already_present += 1
    if to_insert:
        if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
            _copy_insert(conn, spec, to_insert)
        else:
            conn.execute(_insert_statement(conn, spec), to_insert)
        counts.inserted += len(to_insert)
    if to_update:
        stmt = (
            update(table)
            .where(and_(*(table.c[c] == bindparam(f"k_{c}") for c in spec.key)))
            .values({c: bindparam(f"v_{c}") for c in spec.update})
        )
        params = [
            {**{f"k_{c}": row[c] for c in spec.key}, **{f"v_{c}": row[c] for c in spec.update}}
            for row in to_update
        ]
        conn.execute(stmt, params)
        counts.updated += len(to_update)
    return counts
