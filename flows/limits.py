"""Per-channel send rates shared by every worker: Prefect global concurrency limits with slot decay.

With ``OUTREACH_RATE_LIMITS=true`` each SMS and email hand-off first takes as many slots as it
carries messages from the limit ``<OUTREACH_RATE_LIMIT_PREFIX><channel>`` (default
``outreach-sms``, ``outreach-email``). The server decays slots at the limit's rate, so every
process that sends — threads, shards, workers on other machines — draws from one bucket: the
limit's ``limit`` is the burst, ``slot_decay_per_second`` the sustained messages per second.
Create them once per server (docs/production.md)::

    prefect gcl create outreach-sms --limit 100 --slot-decay-per-second 100
    prefect gcl create outreach-email --limit 1000 --slot-decay-per-second 1000

A limit that is enabled but missing (or has no decay, so it would never free a slot) is an error
at the start of the run, naming the command that creates it; Prefect's own default would log a
warning and send unlimited. Letters and calls are capped per day by the policy, not per second.
"""

from __future__ import annotations

import threading

from outreach.config import Settings
from outreach.errors import RunIncomplete

RATE_LIMITED = ("sms", "email")


class RateLimitMissing(RunIncomplete):
    """Rate limits are enabled but a channel's global concurrency limit is missing or unusable."""


def _command(name: str) -> str:
    return f"prefect gcl create {name} --limit <burst> --slot-decay-per-second <messages per second>"


class PrefectRateLimits:
    """The Dispatcher's RateLimiter on Prefect global concurrency limits (one per process)."""

    def __init__(
        self,
        prefix: str = "outreach-",
        channels: tuple[str, ...] = RATE_LIMITED,
        timeout: float | None = None,
    ) -> None:
        self.prefix = prefix
        self.channels = channels
        self.timeout = timeout
        self._burst: dict[str, int] = {}
        self._lock = threading.Lock()

    def name(self, channel: str) -> str:
        return f"{self.prefix}{channel}"

    def check(self) -> dict[str, tuple[int, float]]:
        """Read every channel's limit: ``{channel: (burst, per second)}``; raise RateLimitMissing
        listing every limit that is missing, inactive or without slot decay."""
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        found: dict[str, tuple[int, float]] = {}
        problems: list[str] = []
        with get_client(sync_client=True) as client:
            for channel in self.channels:
                name = self.name(channel)
                try:
                    limit = client.read_global_concurrency_limit_by_name(name)
                except ObjectNotFound:
                    problems.append(f"global concurrency limit {name!r} does not exist: {_command(name)}")
                    continue
                decay = limit.slot_decay_per_second or 0.0
                if not limit.active:
                    problems.append(
                        f"global concurrency limit {name!r} is inactive: prefect gcl enable {name}"
                    )
                elif decay <= 0:
                    problems.append(
                        f"global concurrency limit {name!r} has no slot decay, so it can never rate-limit: "
                        f"prefect gcl update {name} --slot-decay-per-second <messages per second>"
                    )
                else:
                    found[channel] = (limit.limit, decay)
        if problems:
            raise RateLimitMissing(
                "rate limits are enabled (OUTREACH_RATE_LIMITS) but "
                + "; ".join(problems)
                + ". Create them, or set OUTREACH_RATE_LIMITS=false for a run without shared limits."
            )
        with self._lock:
            self._burst = {channel: burst for channel, (burst, _) in found.items()}
        return found

    def slice_size(self, channel: str) -> int | None:
        if channel not in self.channels:
            return None
        with self._lock:
            known = channel in self._burst
        if not known:
            self.check()
        return self._burst[channel]

    def acquire(self, channel: str, count: int) -> None:
        if channel not in self.channels or count <= 0:
            return
        from prefect.concurrency.sync import rate_limit

        try:
            rate_limit(self.name(channel), occupy=count, strict=True, timeout_seconds=self.timeout)
        except TimeoutError:
            raise
        except Exception as exc:  # ConcurrencySlotAcquisitionError: missing, deleted, lowered below count
            raise RateLimitMissing(f"cannot take {count} slots of {self.name(channel)!r}: {exc}") from exc


_shared: dict[str, PrefectRateLimits] = {}
_shared_lock = threading.Lock()


def rate_limiter(settings: Settings) -> PrefectRateLimits | None:
    """This process's limiter, or None when rate limits are off (the embedded default)."""
    if not settings.rate_limits:
        return None
    with _shared_lock:
        limiter = _shared.get(settings.rate_limit_prefix)
        if limiter is None:
            limiter = _shared[settings.rate_limit_prefix] = PrefectRateLimits(settings.rate_limit_prefix)
        return limiter


def check_rate_limits(settings: Settings) -> dict[str, tuple[int, float]]:
    """Fail fast, before anything is decided or claimed, when enabled limits are missing."""
    limiter = rate_limiter(settings)
    return limiter.check() if limiter else {}
