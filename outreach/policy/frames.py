"""Read query results straight into Polars frames, fast and typed, on SQLite and PostgreSQL.

Fetching a million rows through SQLAlchemy row objects costs seconds per table (a Python object
per cell). ADBC drivers (Apache Arrow Database Connectivity) hand over Arrow columns instead:
on the benchmark's 1M-row tables about 0.3–1 s per table on both databases, 3× faster than a raw
DBAPI cursor on SQLite (see bench/results/policy.md). PostgreSQL is read in-process through
libpq; SQLite through a child process (``outreach.sqlite_arrow``: ADBC bundles its own SQLite
library, which must not share a process with the app's). Other dialects, in-memory SQLite and
machines without the drivers use a DBAPI cursor read in chunks.

Queries given here carry no bound parameters: callers inline only values they formatted
themselves (ISO dates), which keeps one SQL text for both drivers' parameter styles.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

log = logging.getLogger(__name__)
FETCH_ROWS = 100_000


def adbc_uri(engine: Engine) -> tuple[str, str] | None:
    """(driver, uri) for an ADBC connection to the engine's database, or None when not possible."""
    url = engine.url
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return "sqlite", database
    if backend == "postgresql":
        plain = url.set(drivername="postgresql")
        return "postgresql", plain.render_as_string(hide_password=False)
    return None


def _dbapi_read(engine: Engine, sql: str, columns: list[str]) -> pl.DataFrame:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(sql)
        names = [d[0] for d in cur.description]
        parts = []
        while rows := cur.fetchmany(FETCH_ROWS):
            parts.append(pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None))
        cur.close()
    finally:
        raw.close()
    if not parts:
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.Utf8))
    return pl.concat(parts, how="vertical_relaxed")


def _to_datetime(col: pl.Expr) -> pl.Expr:
    """SQLite keeps timestamps as text ("2026-01-01 09:00:00.000000", UTC by our convention)."""
    text = col.cast(pl.Utf8)
    return pl.coalesce(
        text.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC", strict=False),
        text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_zone="UTC", strict=False),
        text.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%:z", strict=False).dt.convert_time_zone("UTC"),
    )


def _conform(frame: pl.DataFrame, schema: Mapping[str, pl.DataType], what: str) -> pl.DataFrame:
    """Cast every column to the wanted type, parsing SQLite's text dates; unparseable values fail loudly."""
    out = []
    for name, dtype in schema.items():
        col = pl.col(name)
        have = frame.schema[name]
        if have == dtype:
            out.append(col)
        elif dtype == pl.Date and have == pl.Utf8:
            out.append(col.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
        elif isinstance(dtype, pl.Datetime) and not isinstance(have, pl.Datetime):
            out.append(_to_datetime(col))
        elif isinstance(dtype, pl.Datetime):
            out.append(
                col.dt.replace_time_zone("UTC") if have.time_zone is None else col.dt.convert_time_zone("UTC")
            )
        elif dtype == pl.Boolean and have != pl.Boolean:
            out.append(col.cast(pl.Int64).cast(pl.Boolean))
        else:
            out.append(col.cast(dtype))
    typed = frame.select(out)
    for name, dtype in schema.items():
        if dtype in (pl.Date,) or isinstance(dtype, pl.Datetime):
            bad = typed[name].is_null() & frame[name].is_not_null()
            if bad.any():
                value = frame.filter(bad)[name][0]
                raise ValueError(f"{what}: column {name}: cannot read {value!r} as {dtype}")
    return typed


def _sqlite_children(path: str, lanes: list[dict[str, str]]) -> dict[str, pl.DataFrame]:
    """One reader process per lane, running side by side (each lane is its own snapshot)."""
    with tempfile.TemporaryDirectory(prefix="outreach-read-") as out:
        procs = []
        for lane in lanes:
            proc = subprocess.Popen(
                [sys.executable, "-m", "outreach.sqlite_arrow"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            proc.stdin.write(json.dumps({"db": path, "out": out, "queries": lane}))
            proc.stdin.close()
        failures = []
        for proc in procs:
            stderr = proc.stderr.read()
            proc.stdout.read()
            if proc.wait() != 0:
                failures.append(stderr.strip()[-2000:])
        if failures:
            raise RuntimeError(f"SQLite reader failed: {failures[0]}")
        return {name: pl.read_ipc(Path(out) / f"{name}.arrow") for lane in lanes for name in lane}


def _pg_lane(dbapi, uri: str, lane: dict[str, str], snapshot: str | None) -> dict[str, pl.DataFrame]:
    with dbapi.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if snapshot:
            cur.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        frames = {}
        for name, sql in lane.items():
            cur.execute(sql)
            frames[name] = pl.DataFrame(cur.fetch_arrow())
        conn.rollback()
        return frames


def _adbc_many(driver: str, uri: str, lanes: list[dict[str, str]]) -> dict[str, pl.DataFrame]:
    if driver == "sqlite":
        if importlib.util.find_spec("adbc_driver_sqlite") is None:
            raise ImportError("adbc_driver_sqlite")
        return _sqlite_children(uri, lanes)
    import adbc_driver_postgresql.dbapi as dbapi

    # the lanes run on parallel connections that share one exported snapshot
    with dbapi.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cur.execute("SELECT pg_export_snapshot() AS snapshot")
        snapshot = pl.DataFrame(cur.fetch_arrow())["snapshot"][0]
        with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
            parts = list(pool.map(lambda lane: _pg_lane(dbapi, uri, lane, snapshot), lanes))
        conn.rollback()
    return {name: frame for part in parts for name, frame in part.items()}


def read_frames(
    engine: Engine,
    queries: dict[str, tuple[str, Mapping[str, pl.DataType]]],
    *,
    use_adbc: bool = True,
    lanes: list[list[str]] | None = None,
) -> dict[str, pl.DataFrame]:
    """Several queries at once, each as a typed frame.

    With the Arrow readers, ``lanes`` (lists of query names) run side by side: on PostgreSQL on
    parallel connections sharing one exported snapshot, on SQLite in parallel reader processes.
    """
    target = adbc_uri(engine) if use_adbc else None
    raw = None
    if target is not None:
        sql = {name: text for name, (text, _) in queries.items()}
        grouped = [{n: sql[n] for n in lane if n in sql} for lane in (lanes or [list(sql)])]
        grouped = [lane for lane in grouped if lane]
        missing = set(sql) - {n for lane in grouped for n in lane}
        if missing:
            grouped.append({n: sql[n] for n in sorted(missing)})
        try:
            raw = _adbc_many(*target, grouped)
        except ImportError:
            log.warning("ADBC driver for %s not installed; reading through the DBAPI cursor", target[0])
    if raw is None:
        raw = {name: _dbapi_read(engine, sql, list(schema)) for name, (sql, schema) in queries.items()}
    return {name: _shape(raw[name], schema, name) for name, (_, schema) in queries.items()}


def read_frame(
    engine: Engine, sql: str, schema: Mapping[str, pl.DataType], what: str, *, use_adbc: bool = True
) -> pl.DataFrame:
    """The query's rows as a frame with exactly ``schema`` (names in order, types cast)."""
    return read_frames(engine, {what: (sql, schema)}, use_adbc=use_adbc)[what]


def _shape(frame: pl.DataFrame, schema: Mapping[str, pl.DataType], what: str) -> pl.DataFrame:
    if frame.width != len(schema):
        raise ValueError(f"{what}: query returned {frame.width} columns, expected {len(schema)}")
    frame.columns = list(schema)
    if frame.is_empty():
        return pl.DataFrame(schema=dict(schema))
    return _conform(frame, schema, what)
