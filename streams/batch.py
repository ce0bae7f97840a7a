"""The worker's batch path: one batch of raw records, as named, timed steps.

    decode -> enrich -> sessions + sink (one Postgres transaction) -> realtime

* decode (`decode`): `RawEvent.from_bytes`, the one choke point with the caps of
  `tinytrail.limits`; any exception dead-letters that record alone.
* enrich (`enrich`): the website cache is refreshed for the batch's sites (retried
  until Postgres answers, `know_websites`), then the named pure steps of
  `streams.enrich`; an exception in a step dead-letters that event alone, other
  drops (unknown website, bot rules) are counted.
* sessions + sink (`store`): `Sink.apply` assigns sessions and writes events,
  aggregate deltas and offsets in ONE transaction. Transient errors are retried for
  ever with backoff; a data error splits the records in halves until the refused
  event is alone, and that one is dead-lettered with its reason (issue 12's
  classification: `streams.errors`).
* realtime (`realtime`): after COMMIT, the realtime windows and their Redis mirror
  (approximate; failures are counted, never the batch's).

Each step is timed into `Phases` under the names the stream benchmark prints
(decode, enrich, pg_*, sessionise, session_store, realtime_table, realtime_redis).
The worker (`streams/runtime.py` `Runtime`) owns the services; this module owns the order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol, cast

import psycopg
from prometheus_client import Counter

from streams.deadletters import DeadLetter
from streams.enrich import enrich_batch_async
from streams.errors import backoff, is_transient
from streams.errors import reason as error_reason
from streams.models import Enriched
from streams.phases import Phases
from streams.sink import BatchResult, Sink
from streams.websites import WorkerWebsites
from streams.windows import mirror_payload, realtime_events
from tinytrail.event import DecodeError, RawEvent
from tinytrail.realtime import write_realtime

log = logging.getLogger("tinytrail.streams")

SINK_REFUSED = Counter("tinytrail_sink_refused_events_total",
                       "Events dead-lettered because Postgres (or sessionising) refused them,"
                       " isolated by bisection")
BISECTIONS = Counter("tinytrail_sink_bisections_total",
                     "Batch parts split in two after a data error")
RETRIES = Counter("tinytrail_sink_retries_total",
                  "Batch attempts retried after a transient error (Postgres or the broker)")
REDIS_FAILED = Counter("tinytrail_realtime_redis_failures_total", "Realtime mirror failures")
LOOKUP_FAILED = Counter("tinytrail_worker_website_lookup_failures_total",
                        "Website lookups of a batch that failed, retried until Postgres"
                        " answers; kind=other (not transient: a grant, a schema) needs an"
                        " operator", ["kind"])


class Record(Protocol):
    """A raw-topic message as fetched (aiokafka's ConsumerRecord, `RawRecord`)."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class BatchHost(Protocol):
    """What the batch path uses of the worker (`streams.runtime.Runtime`); read on every
    batch, so a test may swap any of them."""

    sink: Sink
    websites: WorkerWebsites
    phases: Phases
    windows: Any  # the realtime windows table (`streams.windows`)
    redis: Any
    ready: asyncio.Event
    batch_started: float | None
    committed: int

    async def send_dead(self, dead: Sequence[DeadLetter]) -> None: ...
    async def resync(self, why: str = "gap") -> None: ...


def decode(records: Sequence[Record]) -> tuple[list[Enriched], list[DeadLetter]]:
    """Records -> (decoded events, dead letters of the records that failed)."""
    decoded: list[Enriched] = []
    dead: list[DeadLetter] = []
    for msg in records:
        p, off = msg.partition, msg.offset
        try:
            raw = RawEvent.from_bytes(cast(bytes, msg.value))  # None raises: dead-lettered
            decoded.append(Enriched.from_raw(raw, p, off))
        except DecodeError as exc:
            dead.append(DeadLetter(p, off, msg.key, msg.value, f"decode: {exc}"))
        except Exception as exc:  # noqa: BLE001 - one event's problem, never the batch's
            dead.append(DeadLetter(p, off, msg.key, msg.value,
                                   f"decode: {type(exc).__name__}: {exc}"[:400]))
    return decoded, dead


def marks_and_offsets(records: Sequence[Record]) -> tuple[dict[int, int], dict[int, list[int]]]:
    """(partition -> highest offset, partition -> every offset in record order)."""
    marks: dict[int, int] = {}
    offsets: dict[int, list[int]] = {}
    for m in records:
        p, off = m.partition, m.offset
        if off > marks.get(p, -1):
            marks[p] = off
        seen = offsets.get(p)
        if seen is None:
            offsets[p] = [off]
        else:
            seen.append(off)
    return marks, offsets


class BatchPath:
    """Runs batches for one worker (`run`); see the module doc for the steps."""

    def __init__(self, host: BatchHost) -> None:
        self.host = host
        self._sent_dead: set[tuple[int, int]] = set()

    async def run(self, records: Sequence[Record]) -> int:
        """Process one batch of raw records; returns the number of new events stored."""
        host = self.host
        await host.ready.wait()
        ph = host.phases
        if ph.batches:
            ph.lap("faust_between_batches")  # Faust: fetch, buffer, build the next batch
        else:
            ph.start()
        host.batch_started = time.monotonic()
        try:
            decoded, dead = decode(records)
            ph.lap("decode")
            kept = await self.enrich(records, decoded, dead)
            ph.lap("enrich")
            self._sent_dead = set()
            res = await self.store(records, kept, dead)
            ph.batches += 1  # counted at commit (the bench stops us as soon as it sees it)
            host.committed += 1
            if res.gaps:
                await host.resync()
            ph.start()
            await self.realtime(res.new_events)
            return len(res.new_events)
        finally:
            host.batch_started = None

    async def enrich(self, records: Sequence[Record], decoded: list[Enriched],
                     dead: list[DeadLetter]) -> list[Enriched]:
        """The enriched events to store; events an enrichment step raised on are
        appended to `dead` (with their original record)."""
        await self.know_websites({e.website_id for e in decoded})
        kept, dropped = await enrich_batch_async(decoded, self.host.websites.get)
        if dropped:
            original = {(m.partition, m.offset): m for m in records}
            for e, why in dropped:
                if why.reason.startswith("error"):
                    msg = original[(e.kafka_partition, e.kafka_offset)]
                    dead.append(DeadLetter(e.kafka_partition, e.kafka_offset, msg.key,
                                           msg.value, why.reason))
        return kept

    async def know_websites(self, ids: set[str]) -> None:
        """Refresh the website cache when due and look up `ids` it lacks (one query).

        Every failure is retried with backoff, so the batch waits and no offset moves: an
        event must never be dropped as `unknown_website` because Postgres could not be
        asked (docs/RULES.md, "A website is collectable from the moment its 201 is
        sent"). The events are not to blame: the ids asked are canonical UUIDs
        (`RawEvent.check`), so the query is the same whatever the batch holds. A transient
        error (`streams.errors`) is a warning; any other (the worker's role lost its
        grant on `websites`, a column it selects does not exist yet) is an ERROR and
        counted in `tinytrail_worker_website_lookup_failures_total{kind="other"}`: it
        will not heal by itself, and the liveness probe restarts a worker whose batch is
        stuck longer than `worker_batch_stuck_seconds`."""
        websites = self.host.websites
        attempt = 0
        while True:
            try:
                await websites.maybe_refresh()
                await websites.recheck(ids)
                return
            except Exception as exc:  # noqa: BLE001 - classified right here
                attempt += 1
                if is_transient(exc):
                    RETRIES.inc()
                    LOOKUP_FAILED.labels("transient").inc()
                    log.warning("website lookup failed (%s); retry %d", exc, attempt)
                else:
                    LOOKUP_FAILED.labels("other").inc()
                    log.error("website lookup failed, not a transient error (%s: %s);"
                              " the batch waits, retry %d", type(exc).__name__,
                              str(exc).splitlines()[0] if str(exc) else "", attempt)
                await asyncio.sleep(backoff(attempt))

    async def realtime(self, new_events: Sequence[Enriched]) -> None:
        """After COMMIT: the realtime windows and their Redis mirror (approximate; any
        failure is logged and counted, never the batch's)."""
        host = self.host
        ph = host.phases
        live = realtime_events(new_events)
        if not live:
            return
        try:
            now_ms = int(time.time() * 1000)
            visitors, pages, windows = mirror_payload(live, host.windows, now_ms)
            ph.lap("realtime_table")
            if visitors or pages or windows:
                await write_realtime(host.redis, visitors, pages, windows, now_ms)
        except Exception as exc:  # noqa: BLE001 - realtime must never stop the pipeline
            REDIS_FAILED.inc()
            log.warning("realtime update failed: %s", exc)
        ph.lap("realtime_redis")

    async def _send_dead_once(self, dead: Sequence[DeadLetter]) -> None:
        """Send dead letters not yet sent for this batch: a part retried after a data
        error sends its garbage again before its next COMMIT."""
        fresh = [d for d in dead if (d.partition, d.offset) not in self._sent_dead]
        if fresh:
            await self.host.send_dead(fresh)
            self._sent_dead.update((d.partition, d.offset) for d in fresh)

    async def store(self, records: Sequence[Record], kept: list[Enriched],
                    dead: list[DeadLetter]) -> BatchResult:
        """Apply `records` (their `kept` events and `dead` letters) in one transaction,
        retrying transient errors for ever with backoff (the liveness probe notices a
        batch stuck too long). On a data error: one event left -> dead-lettered with the
        reason, its offset committed; more -> the records are split in two halves (in
        order, so each half holds a prefix of every partition's offsets) and each is
        stored on its own, recursively. Returns the merged result."""
        host = self.host
        marks, offsets = marks_and_offsets(records)
        attempt = 0
        while True:
            try:
                return await host.sink.apply(kept, marks, dead, self._send_dead_once,
                                             offsets=offsets)
            except psycopg.errors.ForeignKeyViolation:
                # A website was deleted since the last refresh: drop its events.
                try:
                    await host.websites.refresh()
                except Exception as exc:  # noqa: BLE001 - Postgres went away meanwhile
                    attempt += 1
                    log.warning("website refresh failed (%s); retry %d", exc, attempt)
                    await asyncio.sleep(backoff(attempt))
                    continue
                kept = [e for e in kept if host.websites.get(e.website_id) is not None]
                continue
            except Exception as exc:  # noqa: BLE001 - classified right here
                if is_transient(exc) or not kept:
                    attempt += 1
                    RETRIES.inc()
                    log.warning("batch not stored (%s: %s); retry %d", type(exc).__name__,
                                str(exc).splitlines()[0] if str(exc) else "", attempt)
                    await asyncio.sleep(backoff(attempt))
                    continue
                refused = exc
                break
        if len(kept) == 1:
            e = kept[0]
            msg = next(m for m in records
                       if m.partition == e.kafka_partition and m.offset == e.kafka_offset)
            why = error_reason(refused)
            SINK_REFUSED.inc()
            log.error("postgres refused one event (partition %d, offset %d): %s",
                      e.kafka_partition, e.kafka_offset, why)
            return await self.store(
                records, [], [*dead, DeadLetter(e.kafka_partition, e.kafka_offset, msg.key,
                                                msg.value, why)])
        BISECTIONS.inc()
        log.warning("batch refused (%s); splitting %d records, %d events",
                    type(refused).__name__, len(records), len(kept))
        mid = len(records) // 2
        out = BatchResult()
        for part in (records[:mid], records[mid:]):
            coords = {(m.partition, m.offset) for m in part}
            res = await self.store(
                part, [e for e in kept if (e.kafka_partition, e.kafka_offset) in coords],
                [d for d in dead if (d.partition, d.offset) in coords])
            out.merge(res)
        return out
