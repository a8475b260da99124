"""The base of the HTTP adapters: a bounded pool, an SDK client per thread, classified retries,
per-message outcomes, and one ``close``. A provider module implements only its calls.

SDK clients are not thread-safe (twilio-python #580; SendGrid's client mutates its headers), so
each worker thread of the adapter's pool makes its own on first use (``make_client``). Whatever a
client holds open is registered with ``closing`` and released by ``close``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar

from channels.base import BaseChannel
from channels.classification import retry_policy
from channels.errors import ChannelError, ConfigurationError, OutcomeUnknown
from channels.redact import scrub

log = logging.getLogger(__name__)
T = TypeVar("T")


def secret_value(value: object) -> str:
    """A plain string or anything SecretStr-like (``get_secret_value``), as text."""
    getter = getattr(value, "get_secret_value", None)
    return getter() if callable(getter) else str(value)


class PooledChannel(BaseChannel):
    thread_name: ClassVar[str] = "channel"

    def __init__(
        self,
        *,
        timeout: float,
        max_attempts: int,
        concurrency: int,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if timeout <= 0:
            raise ConfigurationError("timeout must be positive", provider=self.provider)
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.concurrency = max(1, concurrency)
        self._sleep = sleep
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closers: list[Callable[[], None]] = []

    # -- what a provider module implements ------------------------------------------------------

    def make_client(self) -> Any:
        """A new SDK client for the calling thread."""
        raise NotImplementedError

    # -- what the base owns ---------------------------------------------------------------------

    def _client(self) -> Any:
        """This thread's SDK client, made on first use."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.make_client()
        return client

    def closing(self, close: Callable[[], None]) -> None:
        """Run ``close`` when the adapter closes (a transport made by some worker thread)."""
        with self._lock:
            self._closers.append(close)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=self.thread_name)
            return self._pool

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._executor().submit(fn, *args)

    def retrying(self, call: Callable[..., T], *args: Any) -> T:
        """``call`` under the classified retries: TransientError only, backoff, Retry-After."""
        policy = retry_policy(self.max_attempts, **({"sleep": self._sleep} if self._sleep else {}))
        return policy(call, *args)

    def gather(
        self, futures: Mapping[str, Future[T]], what: str
    ) -> tuple[dict[str, T], dict[str, Exception]]:
        """Each message's answer or error: a ChannelError as raised, anything else (a bug) as
        OutcomeUnknown, so one failure never loses the other messages' outcomes."""
        done: dict[str, T] = {}
        errors: dict[str, Exception] = {}
        for message_id, future in futures.items():
            try:
                done[message_id] = future.result()
            except ChannelError as exc:
                errors[message_id] = exc
            except Exception as exc:
                log.exception("unexpected error in %s %s %s", self.provider, what, message_id)
                errors[message_id] = OutcomeUnknown(
                    f"unexpected {type(exc).__name__}: {scrub(str(exc))}", provider=self.provider
                )
        return done, errors

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        with self._lock:
            closers, self._closers = self._closers, []
        for close in closers:  # what the threads' clients held, now that no thread uses them
            close()
