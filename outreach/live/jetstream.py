"""NATS JetStream as the live lane's event source (the tested default; docs/realtime.md says why).

One stream holds two subjects: ``<subject>`` (payment events) and ``<subject>.dlq`` (poison
events with their reason in headers). Each consumer group is a *durable pull consumer* filtered on
the events subject: several processes, on several machines, that use the same durable name share
the stream's events between them; the server keeps the group's position, so a restarted consumer
resumes where the group stood. Explicit acknowledgement: an event not acknowledged within
``ack_wait`` is delivered again (to any member of the group).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import nats
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from channels.errors import OutreachError
from outreach.config import Settings
from outreach.live.source import Delivery

DEFAULT_URL = Settings.model_fields["nats_url"].default  # one default: the settings tree's
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamNames:
    stream: str = "PAYMENTS"
    subject: str = "bank.payments"
    durable: str = "outreach-live"

    @property
    def dead_letter(self) -> str:
        return f"{self.subject}.dlq"


class BrokerUnavailable(OutreachError, OSError):
    """The NATS server cannot be reached (named by its URL)."""


async def _connect(url: str, name: str):
    """Connect, failing at once (one line naming the URL) when the server is not there; once
    connected, reconnect for as long as it takes (the broker restarting must not stop the lane)."""
    parts = urlsplit(url)
    try:  # nats-py retries an unreachable first server forever, logging a traceback per attempt
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 4222), 5
        )
        writer.close()
    except (OSError, TimeoutError) as exc:
        raise BrokerUnavailable(f"{url}: cannot reach the NATS server ({type(exc).__name__})") from exc

    async def quiet(exc: Exception) -> None:  # one line per connection problem, no traceback
        log.warning("nats %s: %s", url, type(exc).__name__)

    try:
        return await nats.connect(
            url, name=name, connect_timeout=5, max_reconnect_attempts=-1, error_cb=quiet
        )
    except (NoServersError, OSError, TimeoutError) as exc:
        raise BrokerUnavailable(f"{url}: cannot reach the NATS server ({type(exc).__name__})") from exc


async def ensure_stream(js, names: StreamNames) -> None:
    """Create the stream if it is missing (file storage: events survive a broker restart)."""
    try:
        await js.stream_info(names.stream)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=names.stream, subjects=[names.subject, names.dead_letter]))


class JetStreamSource:
    """A member of the consumer group ``names.durable``. Open with ``await JetStreamSource.open(...)``.

    A fetch is one pull request ("up to N events, for at most T"): the server completes it when N
    are delivered or T has passed (status 408). The events arrive on an inbox whose callback only
    collects them — nats-py's own ``fetch`` awaits every message separately, which capped intake
    at ~1,600 events/s on this machine (bench/results/realtime.md).
    """

    def __init__(self, nc, js, names: StreamNames) -> None:
        self.nc, self.js, self.names = nc, js, names
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{names.stream}.{names.durable}"
        self._inbox = nc.new_inbox()
        self._buffer: list = []
        self._want = 0
        self._done = asyncio.Event()
        self._sub = None

    @classmethod
    async def open(
        cls,
        url: str = DEFAULT_URL,
        names: StreamNames | None = None,
        *,
        ack_wait: float = 30.0,
        max_ack_pending: int = 20_000,
    ) -> JetStreamSource:
        names = names or StreamNames()
        nc = await _connect(url, f"outreach-live:{names.durable}")
        js = nc.jetstream()
        await ensure_stream(js, names)
        config = ConsumerConfig(
            durable_name=names.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ack_wait,
            max_ack_pending=max_ack_pending,
            filter_subject=names.subject,
        )
        try:
            await js.consumer_info(names.stream, names.durable)  # the group exists: join it as it is
        except NotFoundError:
            await js.add_consumer(names.stream, config)
        source = cls(nc, js, names)
        source._sub = await nc.subscribe(source._inbox, cb=source._arrived)
        return source

    async def _arrived(self, msg) -> None:
        status = (msg.headers or {}).get("Status") if not msg.data else None
        if status:  # 408: the request expired; 404: nothing pending; 409: e.g. the consumer was deleted
            self._done.set()
            return
        self._buffer.append(msg)
        if len(self._buffer) >= self._want:
            self._done.set()

    async def fetch(self, max_events: int, timeout: float) -> list[Delivery]:
        self._buffer, self._want = [], max_events
        self._done.clear()
        request = {"batch": max_events, "expires": int(timeout * 1_000_000_000)}
        await self.nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)
        # the server answers by the expiry; the margin only covers a lost connection
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), timeout + 2.0)
        msgs, self._buffer = self._buffer, []
        return [Delivery(m.data, m, m.metadata.num_delivered > 1) for m in msgs]

    async def ack(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            await delivery.handle.ack()
        await self.nc.flush()  # the acks are on the wire before we report the batch done

    async def dead_letter(self, delivery: Delivery, reason: str, detail: str) -> None:
        headers = {"Outreach-Reason": reason, "Outreach-Detail": detail[:200]}
        meta = delivery.handle.metadata
        headers["Outreach-Stream-Seq"] = str(meta.sequence.stream)
        await self.js.publish(self.names.dead_letter, delivery.data, headers=headers)  # waits for the store
        await delivery.handle.ack()

    async def lag(self) -> int:
        info = await self.js.consumer_info(self.names.stream, self.names.durable)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def close(self) -> None:
        # every ack was flushed with its batch: flush and close (nothing to drain)
        if not self.nc.is_closed:
            await self.nc.flush()
            await self.nc.close()


class JetStreamSink:
    """Publishes events to the stream, each acknowledged by the server (stored) before it counts."""

    def __init__(self, nc, js, names: StreamNames) -> None:
        self.nc, self.js, self.names = nc, js, names

    @classmethod
    async def open(cls, url: str = DEFAULT_URL, names: StreamNames | None = None) -> JetStreamSink:
        names = names or StreamNames()
        nc = await _connect(url, "outreach-replay")
        js = nc.jetstream()
        await ensure_stream(js, names)
        return cls(nc, js, names)

    async def publish(self, events: list[bytes]) -> None:
        await asyncio.gather(*(self.js.publish(self.names.subject, data) for data in events))

    async def dead_letters(self, limit: int = 1000) -> list[tuple[dict[str, str], bytes]]:
        """The dead-letter subject's messages (headers, data), oldest first: for operators and tests."""
        sub = await self.js.pull_subscribe(
            self.names.dead_letter,
            stream=self.names.stream,
            config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL),
        )
        found: list[tuple[dict[str, str], bytes]] = []
        try:
            while len(found) < limit:
                try:
                    msgs = await sub.fetch(batch=min(100, limit - len(found)), timeout=0.5)
                except (TimeoutError, NatsTimeout):
                    break
                found += [(dict(m.headers or {}), m.data) for m in msgs]
        finally:
            await sub.unsubscribe()
        return found

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.flush()
            await self.nc.close()
