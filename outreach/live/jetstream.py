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
from dataclasses import dataclass

import nats
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from outreach.live.source import Delivery

DEFAULT_URL = "nats://127.0.0.1:4222"


@dataclass(frozen=True)
class StreamNames:
    stream: str = "PAYMENTS"
    subject: str = "bank.payments"
    durable: str = "outreach-live"

    @property
    def dead_letter(self) -> str:
        return f"{self.subject}.dlq"


class BrokerUnavailable(OSError):
    """The NATS server cannot be reached (named by its URL)."""


async def _connect(url: str, name: str):
    try:
        return await nats.connect(url, name=name, connect_timeout=5, max_reconnect_attempts=-1)
    except (NoServersError, OSError, TimeoutError) as exc:
        raise BrokerUnavailable(f"{url}: cannot reach the NATS server ({type(exc).__name__})") from exc


async def ensure_stream(js, names: StreamNames) -> None:
    """Create the stream if it is missing (file storage: events survive a broker restart)."""
    try:
        await js.stream_info(names.stream)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=names.stream, subjects=[names.subject, names.dead_letter]))


class JetStreamSource:
    """A member of the consumer group ``names.durable``. Open with ``await JetStreamSource.open(...)``."""

    def __init__(self, nc, js, sub, names: StreamNames) -> None:
        self.nc, self.js, self.sub, self.names = nc, js, sub, names

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
        sub = await js.pull_subscribe(
            names.subject, durable=names.durable, stream=names.stream, config=config
        )
        return cls(nc, js, sub, names)

    async def fetch(self, max_events: int, timeout: float) -> list[Delivery]:
        try:
            msgs = await self.sub.fetch(batch=max_events, timeout=timeout)
        except (TimeoutError, NatsTimeout):
            return []
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
        info = await self.sub.consumer_info()
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def close(self) -> None:
        # every ack was flushed with its batch; draining a pull subscription only waits for its
        # pending fetch request to expire, so flush and close
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
