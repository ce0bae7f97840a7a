"""Everything of Faust the worker uses, in one module: no other module imports `faust`
(tests/foundation/test_layers.py). The overrides were written for faust-streaming
`FAUST_WRITTEN_FOR`; `tests/streams/test_faust_version.py` fails on any other
version, so an upgrade re-reads this module first:

* `BatchingConsumer`: the bulk path for the raw topic (below), `perform_seek`
  followed by the worker's seek to Postgres' offsets (`bind(after_seek=...)`), and
  the consumer bookkeeping a seek must align (`seek_to`, `read_positions`).
* `BatchingTransport`, `WorkerApp`: make Faust build that consumer.
* `KpartTable` (declared by `add_kpart_table`): a table whose key names its changelog
  partition, with the partition-count check Faust's own tables make (changelog ==
  raw topic), also for changelog records the worker writes itself (`verify_partitions`).
* `register_codec`: a changelog value codec from two functions (the sessions' one).
* `raw_topic`, `dlq_topic`: the raw and dead-letter topics bound to the app.
* `BoundedWorker`: Faust's worker with a bounded SIGTERM/SIGINT shutdown.
* `StreamT`, `TopicT`, `TP`, `PartitionsMismatch`: Faust's names the other modules use.

The bulk path for the raw events topic:

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

import contextlib
import importlib.metadata
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import faust
from faust import StreamT, TopicT
from faust.exceptions import PartitionsMismatch
from faust.serializers import codecs
from faust.transport.drivers import aiokafka as faust_kafka
from faust.types import TP

from tinytrail.settings import CoreSettings
from tinytrail.topics import deadletter_topic, raw_events_topic

__all__ = [
    "FAUST_WRITTEN_FOR", "TP", "AfterSeek", "BatchingConsumer", "BatchingTransport",
    "BoundedWorker", "Deliver", "KpartTable", "PartitionsMismatch", "RawBatch", "RawRecord",
    "StreamT", "TopicT", "WorkerApp", "add_kpart_table", "check_faust_version", "dlq_topic",
    "faust_version", "raw_topic", "read_positions", "register_codec",
]

log = logging.getLogger("tinytrail.streams.consumer")

# The faust-streaming releases these overrides were written and tested against:
# [first, end) by (major, minor, patch). Private attributes used: Consumer
# `_read_offset`, `_committed_offset`, `_acked`, `_acked_index`, `_gap`,
# `_wait_next_records`, `_buffered_partitions`, `_to_message`, `_commit`;
# Worker `_schedule_shutdown`; App `_new_transport`.
FAUST_WRITTEN_FOR = ((0, 15, 3), (0, 16, 0))


def faust_version() -> tuple[int, ...]:
    """The installed faust-streaming version as integers (pre-release tags dropped)."""
    raw = importlib.metadata.version("faust-streaming")
    return tuple(int("".join(ch for ch in part if ch.isdigit()) or 0)
                 for part in raw.split(".")[:3])


def check_faust_version() -> None:
    """Raise RuntimeError unless the installed faust-streaming is in FAUST_WRITTEN_FOR."""
    first, end = FAUST_WRITTEN_FOR
    found = faust_version()
    if not first <= found < end:
        raise RuntimeError(
            f"faust-streaming {'.'.join(map(str, found))} is installed; streams/consumer.py"
            f" overrides Faust internals written for >= {'.'.join(map(str, first))},"
            f" < {'.'.join(map(str, end))}: re-read them against the new release first"
        )


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
AfterSeek = Callable[[], Awaitable[None]]


class BatchingConsumer(faust_kafka.Consumer):
    """Faust's aiokafka consumer with the raw topic read in bulk (module doc)."""

    raw_topic: str | None = None
    deliver: Deliver | None = None
    after_seek: AfterSeek | None = None

    def bind(self, raw_topic: str, deliver: Deliver, after_seek: AfterSeek) -> None:
        """Route the raw topic's fetches to `deliver`; run `after_seek` after every
        `perform_seek` (the worker's seek to Postgres' offsets)."""
        self.raw_topic = raw_topic
        self.deliver = deliver
        self.after_seek = after_seek

    async def perform_seek(self) -> None:
        """Faust's seek to Kafka's committed offsets, then the worker's own.

        faust 0.15 `tables/recovery.py` calls it after `resume_partitions` and before
        `resume_flow`, both without changelog recovery (`_resume_streams`) and after
        it; `getmany` below calls it when the flow stops mid-fetch. So nothing of a
        new generation is delivered before the raw partitions stand at the offsets
        Postgres stored, whatever Kafka has committed."""
        await super().perform_seek()
        if self.after_seek is not None:
            await self.after_seek()

    async def seek_to(self, targets: Mapping[TP, int]) -> None:
        """Seek these partitions and align Faust's bookkeeping with the new positions:
        `_read_offset` (the fetch loop drops messages below it), `_committed_offset`
        (acks below it are ignored and commits wait for a contiguous run from it; left
        at Kafka's older value, Kafka's commit would never move again); acks and gaps
        recorded before the seek are stale."""
        await self.seek_wait(targets)
        for tp, off in targets.items():
            self._read_offset[tp] = off or None
            self._committed_offset[tp] = off or None
            for stale in (self._acked, self._acked_index, self._gap):
                stale.pop(tp, None)

    async def commit_offsets(self, offsets: Mapping[TP, int]) -> bool:
        """Commit these offsets to the consumer group (lag monitoring only)."""
        return bool(await self._commit(offsets))

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


class BatchingTransport(faust_kafka.Transport):
    Consumer = BatchingConsumer


def read_positions(consumer: Any, tps: Sequence[TP]) -> dict[int, int]:
    """Partition -> the offset `consumer` reads next, for those of `tps` it knows."""
    read = consumer._read_offset
    return {tp.partition: int(read[tp]) for tp in tps if read.get(tp) is not None}


class WorkerApp(faust.App):
    """Faust app whose consumer hands the raw topic over in bulk (`BatchingConsumer`)."""

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)


class KpartTable(faust.Table[Any, Any]):
    """A table whose key names its own changelog partition (the raw partition): field
    1 of "<...>|<kpart>|<...>". Faust's tables check, on the first write from a source
    topic, that the changelog has as many partitions as that topic (else a key's
    partition would not be its raw partition's); the same check is made here, against
    the raw topic (`source_topic`), once: before Faust writes a key (`partition_for_key`)
    and before the worker writes changelog records itself (`verify_partitions`).
    `from_changelog`: turns a value read back from the changelog (json-decoded) into
    the table's value during recovery (None: kept as decoded)."""

    source_topic: str | None = None
    from_changelog: Callable[[Any], Any] | None = None
    _tt_partitions_checked = False

    def partition_for_key(self, key: Any) -> int | None:
        self.verify_partitions()
        return int(str(key).split("|")[1])

    def verify_partitions(self) -> None:
        """The partition-count check, until it has passed once (`check_partitions`)."""
        if not self._tt_partitions_checked and self.source_topic is not None:
            self.check_partitions(self.source_topic)

    def check_partitions(self, source_topic: str) -> None:
        """Raise `PartitionsMismatch` when `source_topic` and this table's changelog
        have different partition counts (unknown counts: not checked yet)."""
        consumer = self.app.consumer
        source_n = consumer.topic_partitions(source_topic)
        change_n = consumer.topic_partitions(self.changelog_topic_name)
        if source_n is None or change_n is None:
            return
        if source_n != change_n:
            raise PartitionsMismatch(
                f"table {self.name!r}: changelog {self.changelog_topic_name!r} has"
                f" {change_n} partitions, source topic {source_topic!r} has {source_n}"
            )
        self._tt_partitions_checked = True

    def _to_value(self, v: Any) -> Any:
        convert = self.from_changelog
        return v if convert is None else convert(v)


def add_kpart_table(app: faust.App, name: str, partitions: int, source_topic: str, *,
                    value_serializer: str = "json",
                    from_changelog: Callable[[Any], Any] | None = None) -> KpartTable:
    """Declare a `KpartTable` on `app`: json keys, `value_serializer` values (a codec
    name: "json" or one of `register_codec`), `partitions` changelog partitions checked
    against `source_topic` before the first write."""
    table = cast(KpartTable, app.tables.add(KpartTable(
        app, name=name, partitions=partitions,
        schema=faust.Schema(key_serializer="json", value_serializer=value_serializer),
        beacon=app.tables.beacon,
    )))
    # Faust derives the changelog WRITE serializer from value_type (json, which would
    # write a `Session` as an object); the schema above only governs reading back.
    table.value_serializer = value_serializer
    table.source_topic = source_topic
    table.from_changelog = from_changelog
    return table


def register_codec(name: str, dumps: Callable[[Any], bytes],
                   loads: Callable[[bytes], Any]) -> codecs.Codec:
    """Register a Faust codec `name` made of `dumps` / `loads`; returns it."""

    class FunctionCodec(codecs.Codec):
        def _dumps(self, obj: Any) -> bytes:
            return dumps(obj)

        def _loads(self, s: bytes) -> Any:
            return loads(s)

    codec = FunctionCodec()
    codecs.register(name, codec)
    return codec


# The worker's topics: raw events in, dead letters out (raw bytes, never pickle). Both
# are created by `tinytrail migrate` (tinytrail.topics) with their declared partitions
# and retention; here they are only bound to the Faust app.


def _bytes_topic(app: faust.App, name: str) -> TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=False,
    )


def raw_topic(app: faust.App, settings: CoreSettings) -> TopicT:
    return _bytes_topic(app, raw_events_topic(settings))


def dlq_topic(app: faust.App, settings: CoreSettings) -> TopicT:
    return _bytes_topic(app, deadletter_topic(settings))


class BoundedWorker(faust.Worker):
    """Faust's worker whose SIGTERM/SIGINT shutdown is bounded: Faust stops gracefully
    (the batch in flight, the producer, the consumer), and if that has not ended the
    process `shutdown_timeout` seconds after the signal (Kafka or Postgres gone: the
    producer flush, the group leave and the pool close each wait out their own
    timeouts), a watchdog thread ends it with `os._exit(0)`. Safe at any point: Postgres
    holds the offsets with the data (the kill -9 test proves a hard stop loses nothing)."""

    def __init__(self, *args: Any, shutdown_timeout: float = 20.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tt_shutdown_timeout = shutdown_timeout
        self.tt_watchdog: threading.Timer | None = None

    def _schedule_shutdown(self, signal: Any) -> None:
        if self.tt_watchdog is None:
            self.tt_watchdog = threading.Timer(self.tt_shutdown_timeout, _hard_exit,
                                               (self.tt_shutdown_timeout,))
            self.tt_watchdog.daemon = True
            self.tt_watchdog.start()
        super()._schedule_shutdown(signal)


def _hard_exit(after: float) -> None:
    log.error("graceful shutdown did not finish within %.0f s; exiting now", after)
    for h in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            h.flush()
    os._exit(0)
