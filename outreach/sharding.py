"""Shards: a day's dispatch cut by customer so several workers can send it at once.

Every ledger row carries a ``shard`` bucket, a stable hash of the customer id in ``[0, BUCKETS)``
written when the message is planned. Shard ``i`` of ``n`` is the rows whose bucket is ``i`` modulo
``n``: the number of shards is chosen per run, the stored value never changes, and a customer is
always in the same shard of a given ``n``. CRC-32 rather than Python's ``hash``: the same on every
machine and every process (``hash`` of a string is salted per process).
"""

from __future__ import annotations

import zlib

from sqlalchemy import ColumnElement

BUCKETS = 4096  # many more than any sensible shard count, so buckets spread evenly over shards


def shard_bucket(customer_id: str) -> int:
    return zlib.crc32(customer_id.encode("utf-8")) % BUCKETS


def shard_of(customer_id: str, shards: int) -> int:
    """Which of ``shards`` shards a customer's messages fall in."""
    check(0, shards)
    return shard_bucket(customer_id) % shards


def check(shard: int, shards: int) -> None:
    if not 1 <= shards <= BUCKETS:
        raise ValueError(f"shards must be between 1 and {BUCKETS}, got {shards}")
    if not 0 <= shard < shards:
        raise ValueError(f"shard must be between 0 and {shards - 1}, got {shard}")


def in_shard(bucket_column: ColumnElement[int], shard: int, shards: int) -> ColumnElement[bool]:
    """SQL condition: the row's bucket belongs to shard ``shard`` of ``shards`` (SQLite and PostgreSQL)."""
    check(shard, shards)
    return (bucket_column % shards) == shard
