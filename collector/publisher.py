"""Publishing raw events to Kafka: 202 only after the broker's ack, 503 otherwise.

The producer is idempotent with `acks=all`. Each request waits for its own
delivery future for at most `kafka_send_timeout` seconds. Memory is bounded by
`max_in_flight`: a slot is held from `send()` until the broker acks or the
producer gives the message up (not merely until the request stops waiting), so
a broker outage cannot pile up more than `max_in_flight` events in the process;
beyond that, requests get 503 at once. A 503'd event may still reach Kafka once
the broker is back (the client may then retry: at-least-once, and the worker
dedupes by event id); a 202'd event is always in Kafka.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge

from collector.settings import CollectorSettings
from tinytrail.topics import raw_events_topic

log = logging.getLogger("collector.publisher")

PUBLISHED = Counter("tinytrail_collector_published_total", "Events acknowledged by Kafka")
PUBLISH_FAILED = Counter(
    "tinytrail_collector_publish_failed_total",
    "Events answered 503 because Kafka did not acknowledge them in time",
    ["reason"],
)
IN_FLIGHT = Gauge("tinytrail_collector_in_flight", "Events waiting for a Kafka ack")


class Unavailable(Exception):
    """Kafka could not take the event now; answer 503 with Retry-After."""


def make_producer(settings: CollectorSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="tinytrail-collector",
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=settings.kafka_max_batch_bytes,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        compression_type=settings.kafka_compression,
    )


class Publisher:
    def __init__(self, producer: AIOKafkaProducer, settings: CollectorSettings) -> None:
        self.producer = producer
        self.topic = raw_events_topic(settings)
        self.timeout = settings.kafka_send_timeout
        self.max_in_flight = settings.max_in_flight
        self.in_flight = 0
        self.last_ok = True  # did the latest delivery succeed? (for /health)

    def _release(self, fut: asyncio.Future[object] | None = None) -> None:
        self.in_flight -= 1
        IN_FLIGHT.set(self.in_flight)
        if fut is not None and not fut.cancelled():
            self.last_ok = fut.exception() is None

    async def publish(self, key: bytes, value: bytes) -> None:
        if self.in_flight >= self.max_in_flight:
            PUBLISH_FAILED.labels("in_flight_limit").inc()
            raise Unavailable("too many events waiting for Kafka")
        self.in_flight += 1
        IN_FLIGHT.set(self.in_flight)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            # send() waits for metadata and buffer space; the batch is in the accumulator after.
            delivery = await asyncio.wait_for(
                self.producer.send(self.topic, value, key=key), self.timeout
            )
        except Exception as exc:
            self._release()
            self.last_ok = False
            PUBLISH_FAILED.labels(type(exc).__name__).inc()
            raise Unavailable(str(exc) or type(exc).__name__) from None
        delivery.add_done_callback(self._release)
        try:
            await asyncio.wait_for(asyncio.shield(delivery), max(0.0, deadline - loop.time()))
        except Exception as exc:
            PUBLISH_FAILED.labels(type(exc).__name__).inc()
            raise Unavailable(str(exc) or type(exc).__name__) from None
        PUBLISHED.inc()
