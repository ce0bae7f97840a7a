"""Publishing raw events to Kafka: 202 only after the broker's ack, 503 otherwise.

The producer is idempotent with `acks=all`. Requests do not call `producer.send()`
one by one; they join the open *group*, and one flusher turns each group into one
record batch per partition (`create_batch` / `send_batch`), so many concurrent
requests share one batch, one delivery future and one produce request:

    request: slot check -> append (key, value, waiter) to the open group -> await waiter
    flusher: take the group -> partition each key (murmur2, as aiokafka's default
             partitioner) -> build batches -> send_batch -> on the batch's ack, resolve
             every waiter in it

At most one group is being handed to the producer at a time; aiokafka keeps one
produce request in flight per broker and at most one batch queued per partition, so
while Kafka is busy the next group simply grows (batching adapts to load, and one
lone request waits for nothing but its own ack).

Every request still gets its own answer from its own batch's ack: a waiter is set
only when the batch holding that event is acknowledged (`acks=all`), or fails.

Time bound: each group has one timer, `kafka_send_timeout` after the group opened;
when it fires, every waiter not yet answered gets `Unavailable` (503). Memory bound:
`max_in_flight` counts events from `publish()` until their batch is acked or given
up by the producer (not merely until the request stopped waiting), so an outage
cannot hold more than that many events; beyond it, requests get 503 at once. A group
whose waiters all gave up before it was handed to the producer is dropped, not
sent. A 503'd event may still reach Kafka once the broker is back (the client may
retry: at-least-once, and the worker dedupes by event id); a 202'd event is always
in Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import OutOfOrderSequenceNumber, UnknownProducerId
from prometheus_client import Counter, Gauge

from collector.settings import CollectorSettings
from tinytrail.event import partition_for
from tinytrail.topics import raw_events_topic

log = logging.getLogger("collector.publisher")

PUBLISHED = Counter("tinytrail_collector_published_total", "Events acknowledged by Kafka")
PUBLISH_FAILED = Counter(
    "tinytrail_collector_publish_failed_total",
    "Events answered 503 because Kafka did not acknowledge them in time",
    ["reason"],
)
IN_FLIGHT = Gauge("tinytrail_collector_in_flight", "Events waiting for a Kafka ack")
BATCHES = Counter("tinytrail_collector_batches_total", "Record batches handed to the producer")
PRODUCER_RESETS = Counter("tinytrail_collector_producer_resets_total",
                          "Producers replaced after their idempotent sequence broke")

# After an outage, batches that expired inside the producer leave a gap in its idempotent
# sequence numbers; aiokafka then gets OutOfOrderSequenceNumber for every later batch of
# that partition and never recovers on its own. A new producer (new producer id) does.
_BROKEN_SEQUENCE = (OutOfOrderSequenceNumber, UnknownProducerId)


class Unavailable(Exception):
    """Kafka could not take the event now; answer 503 with Retry-After."""


def make_producer(settings: CollectorSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="tinytrail-collector",
        acks="all",
        enable_idempotence=True,
        # Batches arrive complete from the Publisher (which does the lingering), so the
        # producer sends them as soon as the broker connection is free.
        linger_ms=0,
        max_batch_size=settings.kafka_max_batch_bytes,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        compression_type=settings.kafka_compression,
    )


Entry = tuple[bytes, bytes, "asyncio.Future[None]"]


class _Group:
    __slots__ = ("entries", "timer", "left", "expired")

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.timer: asyncio.TimerHandle | None = None
        self.left = 0  # events handed to the producer and not yet answered
        self.expired = False  # the timer fired: every entry has been answered 503

    def settled(self, n: int) -> None:
        """`n` more events answered; once all are, the timer (and its hold on the
        entries' bytes) goes."""
        self.left -= n
        if self.left <= 0 and self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Publisher:
    def __init__(self, producer: AIOKafkaProducer, settings: CollectorSettings) -> None:
        self.producer = producer
        self.settings = settings
        self.broken = False  # the producer's sequence broke: replace it before sending
        self._retired: set[asyncio.Task[None]] = set()
        self.topic = raw_events_topic(settings)
        self.timeout = settings.kafka_send_timeout
        self.linger = settings.kafka_linger_ms / 1000
        self.max_in_flight = settings.max_in_flight
        self.in_flight = 0
        self.last_ok = True  # did the latest delivery succeed? (for /health)
        self._open: _Group | None = None
        self._flusher: asyncio.Task[None] | None = None

    async def publish(self, key: bytes, value: bytes) -> None:
        """Return once Kafka acknowledged the event; raise `Unavailable` otherwise."""
        if self.in_flight >= self.max_in_flight:
            PUBLISH_FAILED.labels("in_flight_limit").inc()
            raise Unavailable("too many events waiting for Kafka")
        self.in_flight += 1
        IN_FLIGHT.set(self.in_flight)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        group = self._open
        if group is not None and group.expired:
            # Its timer fired while the flusher was still busy with an older group (Kafka
            # away): a request joining it now would have no deadline left and hang. Its
            # entries are all answered, so drop it unsent and free their slots.
            self._release(len(group.entries))
            group = self._open = None
        if group is None:
            group = self._open = _Group()
            group.timer = loop.call_later(self.timeout, _expire, group)
        group.entries.append((key, value, waiter))
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush_groups())
        await waiter

    async def close(self) -> None:
        """Stop the flusher (after the producer was stopped or drained)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flusher
        for task in list(self._retired):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _replace_producer(self) -> None:
        """A new producer (new producer id, sequences from 0); the old one is stopped in
        the background, failing whatever it still holds (those requests get 503)."""
        fresh = make_producer(self.settings)
        try:
            await fresh.start()
        except Exception:
            await fresh.stop()
            raise
        old, self.producer, self.broken = self.producer, fresh, False
        PRODUCER_RESETS.inc()
        log.warning("kafka producer replaced after a broken idempotent sequence")
        task = asyncio.ensure_future(old.stop())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    def _release(self, n: int) -> None:
        self.in_flight -= n
        IN_FLIGHT.set(self.in_flight)

    async def _flush_groups(self) -> None:
        try:
            # Let the requests of this loop turn (or of the linger time) join the group.
            await asyncio.sleep(self.linger)
            while self._open is not None:
                group, self._open = self._open, None
                await self._send(group)
        finally:
            self._flusher = None

    async def _send(self, group: _Group) -> None:
        live = [e for e in group.entries if not e[2].done()]  # drop the given-up ones
        if len(live) < len(group.entries):
            self._release(len(group.entries) - len(live))
        group.left = len(live)
        if not live:
            group.settled(0)
            return
        try:
            if self.broken:
                await self._replace_producer()
            parts = self.producer.client.cluster.partitions_for_topic(self.topic)
            if parts is None:
                parts = await self.producer.partitions_for(self.topic)
            ordered = sorted(parts)
        except Exception as exc:
            self._fail(live, exc, release=True)
            group.settled(len(live))
            return
        by_partition: dict[int, list[Entry]] = {}
        for entry in live:
            by_partition.setdefault(partition_for(entry[0], ordered), []).append(entry)
        for partition, entries in by_partition.items():
            for batch, members in self._batches(entries):
                try:
                    delivery = await self.producer.send_batch(batch, self.topic,
                                                              partition=partition)
                except Exception as exc:  # not queued: nothing of it can reach Kafka
                    self._fail(members, exc, release=True)
                    group.settled(len(members))
                    continue
                BATCHES.inc()
                delivery.add_done_callback(
                    lambda fut, members=members: self._delivered(fut, members, group))

    def _batches(self, entries: list[Entry]) -> list[tuple[object, list[Entry]]]:
        """Record batches of at most `max_batch_size` bytes, closed to further appends."""
        out: list[tuple[object, list[Entry]]] = []
        members: list[Entry] = []
        batch = self.producer.create_batch()
        for entry in entries:
            if batch.append(timestamp=None, key=entry[0], value=entry[1]) is None:
                batch.close()
                out.append((batch, members))
                batch, members = self.producer.create_batch(), []
                # An empty batch always takes one record, whatever its size.
                batch.append(timestamp=None, key=entry[0], value=entry[1])
            members.append(entry)
        batch.close()
        out.append((batch, members))
        return out

    def _delivered(self, fut: asyncio.Future[object], members: list[Entry],
                   group: _Group) -> None:
        self._release(len(members))
        group.settled(len(members))
        exc = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if exc is None:
            self.last_ok = True
            PUBLISHED.inc(len(members))
            for _, _, waiter in members:
                if not waiter.done():
                    waiter.set_result(None)
        else:
            self._fail(members, exc, release=False)

    def _fail(self, members: list[Entry], exc: BaseException, *, release: bool) -> None:
        self.last_ok = False
        if isinstance(exc, _BROKEN_SEQUENCE):
            self.broken = True
        if release:
            self._release(len(members))
        reason = type(exc).__name__
        answered = 0
        for _, _, waiter in members:
            if not waiter.done():
                waiter.set_exception(Unavailable(str(exc) or reason))
                answered += 1
        if answered:
            PUBLISH_FAILED.labels(reason).inc(answered)


def _expire(group: _Group) -> None:
    """The group's time is up: 503 for every request still waiting (slots stay held
    until the producer delivers or gives up the batch)."""
    group.expired = True
    late = 0
    for _, _, waiter in group.entries:
        if not waiter.done():
            waiter.set_exception(Unavailable("Kafka did not acknowledge in time"))
            late += 1
    if late:
        PUBLISH_FAILED.labels("TimeoutError").inc(late)
