"""Read SQLite queries into Arrow IPC files in a child process (``python -m outreach.sqlite_arrow``).

Why a child process: the ADBC SQLite driver brings its own copy of the SQLite library. Two copies
of SQLite in one process do not see each other's locks or WAL state (the SQLite docs warn about
exactly this), and in a test it read a stale snapshot while the app's own pysqlite connections
were open. In a separate process it is an ordinary second reader of the database file.
The queries of one call run in one read transaction (one snapshot).

Usage: the parent writes ``{"db": path, "out": dir, "queries": {name: sql}}`` as JSON on stdin;
the child writes ``<dir>/<name>.arrow`` per query and exits 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    import adbc_driver_sqlite.dbapi as dbapi
    import polars as pl

    job = json.load(sys.stdin)
    out = Path(job["out"])
    with dbapi.connect(job["db"], autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("BEGIN")  # one snapshot for every query
        for name, sql in job["queries"].items():
            cur.execute(sql)
            pl.DataFrame(cur.fetch_arrow()).write_ipc(out / f"{name}.arrow", compression="uncompressed")
        cur.execute("COMMIT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
