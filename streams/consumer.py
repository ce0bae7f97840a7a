"""Faust's Kafka consumer with a bulk path for the raw events topic.

Faust delivers every fetched message on its own: `Consumer._drain_messages` awaits
`wait_first(callback(message), suspend_flow.wait())` per message, which starts two
tasks per message, then the conductor, the stream and the ack bookkeeping run per
message too. Measured on the stream benchmark that was ~60 us of Python per event,
more than decoding, enrichment and the Postgres batch together.

`BatchingConsumer.getmany` (the generator `_drain_messages` reads) takes each fetch
as aiokafka returns it (records grouped per partition) and hands the raw topic's
records over IN ONE PIECE, as a `RawBatch`, to `deliver` (the worker sends it to an
in-memory Faust channel that its agent reads). Records of every other topic (table
changelogs during recovery and standby) go through Faust's own per-message path
unchanged. Assignment, rebalancing, table recovery, timers and the producer stay
Faust's.

What the raw path keeps of Faust's contract:
* no delivery while the flow is stopped (a rebalance): the fetch is dropped and the
  consumer re-seeks (`perform_seek`, where the worker seeks to Postgres' offsets);
* records below `_read_offset[tp]` (the position a seek set) are dropped, and the
  read offset moves past what was delivered;
* a batch carries the consumer generation it was fetched in; the agent drops a
  batch of an older generation (its partitions were re-seeked since).
Raw messages are never acked to Faust: where a partition resumes is decided by
`stream_offsets` in Postgres (docs/STREAMS.md), and the worker commits the applied
offsets to Kafka itself, for lag monitoring only.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from faust.transport.drivers import aiokafka as faust_kafka
from faust.types import TP

log = logging.getLogger("tinytrail.streams.consumer")


class RawRecord(NamedTuple):
    """The fields of a raw-topic message the worker reads (aiokafka's ConsumerRecord
    has the same attributes, so fetched records are used as they come)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class RawBatch:
    """Records of one fetch, in partition order; `generation` None = not checked."""

    records: Sequence[Any]
    generation: int | None = None


Deliver = Callable[[RawBatch], Awaitable[None]]


class BatchingConsumer(faust_kafka.Consumer):  # type: ignore[misc]
    raw_topic: str | None = None
    deliver: Deliver | None = None

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        records, active = await self._wait_next_records(timeout)
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            # What Faust does too: the fetch is stale; reposition (our seek runs here).
            try:
                await self.perform_seek()
            except Exception as exc:
                log.warning("seek while the flow is stopped failed: %s", exc)
            return
        generation = self.app.consumer_generation_id
        buffered = self._buffered_partitions
        raw: list[Any] = []
        others: dict[TP, list[Any]] = {}
        for tp, recs in records.items():
            if active is not None and tp not in active and tp not in buffered:
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if tp.topic != self.raw_topic:
                others[tp] = recs
                continue
            floor = self._read_offset.get(tp)
            if floor is not None and recs and recs[0].offset < floor:
                recs = [r for r in recs if r.offset >= floor]
            if recs:
                raw.extend(recs)
                self._read_offset[tp] = recs[-1].offset + 1
        log.debug("fetch: %d raw records, %d other partitions, flow=%s", len(raw),
                  len(others), self.flow_active)
        if raw and self.deliver is not None:
            # Like Faust's own delivery: give up if the flow is suspended meanwhile.
            await self.wait_first(self.deliver(RawBatch(raw, generation)),
                                  self.suspend_flow.wait())
        if not others:
            return
        to_message = self._to_message
        for tp, record in self.scheduler.iterate(others):
            if not self.flow_active or self.app.consumer_generation_id != generation:
                break
            yield tp, to_message(tp, record)


class BatchingTransport(faust_kafka.Transport):  # type: ignore[misc]
    Consumer = BatchingConsumer
