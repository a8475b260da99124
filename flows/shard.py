"""The `dispatch-shard` flow: send one shard of a day's SMS and email (docs/production.md).

`daily-outreach` creates one run of this flow per shard through its deployment, so the pool's
workers share the day. A shard is the ledger rows whose customer hash falls in it
(outreach.sharding): shards never overlap, and the ledger's atomic claims would keep two runs of
the same shard (a retry, an operator's rerun) from sending anything twice anyway. Rate limits are
per channel across all shards (flows/limits.py).
"""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.daily import SHARDED, send_channels
from flows.limits import check_rate_limits
from outreach.config import get_settings
from outreach.sharding import check as check_shards


@flow(
    name="dispatch-shard",
    flow_run_name="dispatch-shard-{run_date}-{shard}-of-{shards}",
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    log_prints=False,
)
def dispatch_shard(run_date: str, shard: int, shards: int, channels: list[str] | None = None) -> dict:
    """Send the due messages of ``channels`` (default SMS and email) in shard ``shard`` of ``shards``."""
    check_shards(shard, shards)
    channels = list(channels or SHARDED)
    unknown = [c for c in channels if c not in SHARDED]
    if unknown:
        raise ValueError(f"channels {unknown} are not sharded; shards send {list(SHARDED)}")
    check_rate_limits(get_settings())
    reports = send_channels(date.fromisoformat(run_date), channels, shard, shards)
    summary = {channel: vars(report) for channel, report in reports.items()}
    get_run_logger().info("shard %d of %d: %s", shard, shards, summary)
    return summary
