"""The stream worker: a Faust app with one batching agent over the raw events topic.

The raw topic is read in bulk: `streams/consumer.py` hands each fetch over as one
`RawBatch` to an in-memory channel; the agent (concurrency 1) takes up to
`FETCHES_PER_BATCH` of them within `batch_window` and runs, per batch:
decode (one choke point: `RawEvent.from_bytes`; failures -> dead-letter topic
with partition/offset), enrich (named pure steps), then `Sink.apply`: one
Postgres transaction for events + sessions + aggregate deltas + offsets. After
COMMIT the realtime windows (Faust table) and their Redis mirror get the new
events. Timers: heartbeat file, retention, realtime window expiry.

Where a partition resumes is decided by Postgres (`stream_offsets.next_offset`),
never by Kafka's committed offsets: Faust drops fetched-but-unprocessed messages on
a rebalance and repositions through aiokafka's `seek_to_committed()`, which leaves
partitions without a committed offset where they were (after the dropped messages).
So `Consumer.perform_seek` - which Faust's recovery calls after resuming the stream
partitions and before resuming the flow, on every assignment - is followed by a seek
of every assigned raw partition to its stored offset (`Runtime.seek_to_stored`). The
sink refuses to move a fence over a hole (`OffsetGap`); the agent then seeks back
the same way (`Runtime.resync`). See docs/STREAMS.md ("Resuming at the right offset").
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import logging
import os
import pathlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import faust
import orjson
import psycopg
import redis.asyncio as aioredis
from prometheus_client import Counter

from streams.consumer import BatchingTransport, RawBatch
from streams.enrich import enrich_batch_async
from streams.errors import backoff, is_transient
from streams.errors import reason as error_reason
from streams.models import Enriched
from streams.retention import run_retention
from streams.session_state import SessionTable
from streams.settings import WorkerSettings
from streams.sink import BatchResult, DeadLetter, Phases, Sink
from streams.topics import dlq_topic, raw_topic
from streams.websites import WebsiteCache
from streams.windows import KpartTable, expire, mirror_payload, realtime_events
from tinytrail.db import make_pool, open_pool
from tinytrail.event import DecodeError, RawEvent
from tinytrail.realtime import write_realtime
from tinytrail.topics import raw_events_topic

log = logging.getLogger("tinytrail.streams")

DEAD = Counter("tinytrail_dead_letters_total", "Messages sent to the dead-letter topic", ["why"])
SINK_REFUSED = Counter("tinytrail_sink_refused_events_total",
                       "Events dead-lettered because Postgres (or sessionising) refused them,"
                       " isolated by bisection")
BISECTIONS = Counter("tinytrail_sink_bisections_total",
                     "Batch parts split in two after a data error")
RETRIES = Counter("tinytrail_sink_retries_total",
                  "Batch attempts retried after a transient error (Postgres or the broker)")
REDIS_FAILED = Counter("tinytrail_realtime_redis_failures_total", "Realtime mirror failures")
SEEKS = Counter(
    "tinytrail_worker_seeks_total", "Seeks of the raw partitions to Postgres' offsets", ["why"]
)
SEEK_FAILED = Counter("tinytrail_worker_seek_failures_total", "Seeks to stored offsets failed")
GC_THRESHOLD = 100_000  # allocations between young-generation collections (default 700)
FETCHES_PER_BATCH = 4  # a fetch returns at most batch_size / 4 records
LOST_FETCHES = Counter("tinytrail_worker_lost_fetches_total",
                       "Pending deliveries of fetched batches cancelled by Faust's flow control"
                       " (batches cleared from its queue are not counted; the stall check"
                       " re-seeks either way)")
STALL_TICKS = 2  # further checks with fetched-but-unapplied records and no progress
STALE = Counter("tinytrail_worker_stale_batches_total",
                "Fetched batches dropped: a rebalance happened since the fetch")


class Runtime:
    """The worker's services (pool, Redis, caches, sink) and the per-batch logic."""

    def __init__(self, app: faust.App, settings: WorkerSettings) -> None:
        self.app = app
        self.settings = settings
        self.pool = make_pool(settings, name="worker", max_size=3,
                              statement_timeout=settings.worker_statement_timeout)
        self.redis: Any = None
        self.websites = WebsiteCache(self.pool, settings.website_refresh_interval,
                                     settings.website_negative_ttl)
        self.phases = Phases()
        self.raw_topic = raw_events_topic(settings)
        self.sessions = SessionTable(app, settings.events_partitions, settings.kafka_bootstrap)
        self.sink = Sink(
            self.pool, group=str(app.conf.id), topic=self.raw_topic,
            store=self.sessions, phases=self.phases,
        )
        self.dlq = dlq_topic(app, settings)
        self.windows: Any = None
        self.ready = asyncio.Event()
        self.batch_lock = asyncio.Lock()  # a revocation waits for the batch in flight
        self.agent_started = asyncio.Event()
        # Set when partitions are revoked, cleared once the next assignment sought the
        # stored offsets: batches fetched before must not be applied meanwhile (their
        # partitions may already be another worker's).
        self.revoked = False
        self._stall: tuple[Any, int] = (None, 0)
        self._kafka_committed: dict[int, int] = {}
        self._open_lock = asyncio.Lock()
        self._sent_dead: set[tuple[int, int]] = set()
        self.batch_started: float | None = None  # monotonic start of the batch in flight
        self.committed = 0  # batches committed since start (the heartbeat watches it)
        self._beat_committed = 0

    async def open_db(self) -> None:
        """Open the pool once; the first assignment's seek may need it before `start`
        ran (Faust starts app tasks only after that assignment's recovery, which waits
        for the seek: waiting for `ready` there would deadlock)."""
        async with self._open_lock:
            if self.pool.closed:
                await open_pool(self.pool, timeout=self.settings.db_connect_timeout)

    async def start(self) -> None:
        await self.open_db()
        self.redis = aioredis.from_url(self.settings.redis_url)
        await self.websites.refresh()
        # A batch allocates ~10^5 short-lived, acyclic objects (tuples, rows, events):
        # with the default 700-allocation threshold the collector runs hundreds of times
        # per batch and its older generations keep re-scanning the session cache. Move
        # the start-up heap (Faust, parser tables) out of its sight and collect rarely.
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 50, 100)
        self.ready.set()
        self.beat()
        log.info("worker ready", extra={"websites": len(self.websites)})

    async def stop(self) -> None:
        await self.sessions.stop()
        await self.pool.close()
        if self.redis is not None:
            await self.redis.aclose()

    def progressing(self, now: float | None = None) -> bool:
        """Is the worker making progress? True when a batch committed since the last
        call, when a batch is in flight for at most `worker_batch_stuck_seconds` (`now`:
        `time.monotonic()`), or when there is nothing to do (`idle`); False otherwise,
        e.g. a batch stuck in retries or a frozen fetch with records waiting."""
        now = time.monotonic() if now is None else now
        started = self.batch_started
        if started is not None:
            return now - started <= self.settings.worker_batch_stuck_seconds
        if self.committed != self._beat_committed:
            self._beat_committed = self.committed
            return True
        return self.idle()

    def idle(self) -> bool:
        """Nothing to do: not started yet or rebalancing (bounded by the broker's own
        timeouts), or every assigned raw partition applied in Postgres up to the broker's
        high watermark as last fetched (unknown high watermark: not idle)."""
        app: Any = self.app
        if not self.ready.is_set() or app.rebalancing:
            return True
        try:
            tps = self.raw_tps()
        except Exception:  # noqa: BLE001 - the consumer is not started yet
            return True
        applied = self.sink.applied_ends()
        try:
            highs = [(tp.partition, app.consumer.highwater(tp)) for tp in tps]
        except Exception:  # noqa: BLE001 - mid-rebalance: cannot tell, do not kill
            return True
        return all(high is not None and applied.get(p, -1) >= high for p, high in highs)

    def beat(self) -> bool:
        """Touch the heartbeat file when `progressing()`; returns whether it did. The
        liveness probe fails when the file is older than its limit (the chart's
        `worker.heartbeatMaxAgeSeconds`), so a stuck batch or a frozen event loop is
        restarted while an idle worker is not."""
        if not self.progressing():
            if self.batch_started is not None:
                log.warning("batch in flight for %.0f s (limit %.0f s): heartbeat withheld",
                            time.monotonic() - self.batch_started,
                            self.settings.worker_batch_stuck_seconds)
            return False
        path = pathlib.Path(self.settings.worker_heartbeat_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        return True

    def install_seek(self) -> None:
        """Make Faust's `perform_seek` end with a seek to Postgres' offsets (idempotent).

        faust 0.15 `tables/recovery.py` calls `consumer.perform_seek()` (which is
        `seek_to_committed()`) after `resume_partitions` and before `resume_flow`, in
        both the no-recovery path (`_resume_streams`) and after changelog recovery;
        `Consumer.getmany` calls it when the flow stops mid-fetch. Running our seek
        right after it means nothing is delivered for the new generation before the
        partitions stand at the stored offsets, whatever Kafka has committed."""
        consumer = self.app.consumer
        if getattr(consumer, "_tt_seek_installed", False):
            return
        faust_seek = consumer.perform_seek

        async def perform_seek() -> None:
            await faust_seek()
            await self.seek_to_stored("assigned")
            self.revoked = False

        consumer.perform_seek = perform_seek  # type: ignore[method-assign]
        consumer._tt_seek_installed = True  # type: ignore[attr-defined]

    async def seek_to_stored(self, why: str) -> None:
        """Seek every assigned raw-topic partition to its stored `next_offset` (one
        Postgres transaction for all of them) and align Faust's bookkeeping with it.

        On failure: logged and counted, not raised. A partition left at a wrong place
        is still safe: ahead of the stored offset, the sink sees a hole and the agent
        resyncs; behind it, the messages are replays and skipped."""
        try:
            await self.open_db()
            consumer: Any = self.app.consumer
            tps = self.raw_tps()
            if not tps:
                return
            earliest = await consumer.earliest_offsets(*tps)
            stored = await self.sink.resume_offsets(
                {tp.partition: int(earliest.get(tp) or 0) for tp in tps}
            )
            targets = {tp: stored[tp.partition] for tp in tps}
            await consumer.seek_wait(targets)
            for tp, off in targets.items():
                # `_read_offset`: the fetch loop drops messages below it; `_committed_offset`:
                # acks below it are ignored and commits wait for a contiguous run from it
                # (left at Kafka's older value, Kafka's commit would never move again);
                # acks and gaps recorded before the seek are stale.
                consumer._read_offset[tp] = off or None
                consumer._committed_offset[tp] = off or None
                for stale in (consumer._acked, consumer._acked_index, consumer._gap):
                    stale.pop(tp, None)
            self.sink.reset()
            self.sink.seeked({tp.partition: off for tp, off in targets.items()})
            SEEKS.labels(why).inc()
            log.info("seeked raw partitions to stored offsets (%s)", why,
                     extra={"offsets": {tp.partition: o for tp, o in targets.items()}})
        except Exception:
            SEEK_FAILED.inc()
            log.exception("seek to stored offsets failed (%s)", why)

    def raw_tps(self, tps: Any = None) -> list[Any]:
        """The raw topic's partitions among `tps` (default: the consumer's assignment)."""
        if tps is None:
            tps = self.app.consumer.assignment()
        return sorted(tp for tp in tps if tp.topic == self.raw_topic)

    def raw_positions(self) -> dict[int, int]:
        """Partition -> the offset the consumer reads next (assigned raw partitions)."""
        read = self.app.consumer._read_offset
        return {tp.partition: int(read[tp]) for tp in self.raw_tps()
                if read.get(tp) is not None}

    async def commit_applied(self) -> None:
        """Commit what Postgres applied to Kafka's consumer group, for lag monitoring only
        (raw messages are never acked to Faust; Postgres decides where partitions resume)."""
        app: Any = self.app
        if app.rebalancing or not self.ready.is_set():
            return
        applied = self.sink.applied_ends()
        offsets = {tp: applied[tp.partition] for tp in self.raw_tps()
                   if tp.partition in applied
                   and self._kafka_committed.get(tp.partition) != applied[tp.partition]}
        if offsets and await app.consumer._commit(offsets):
            self._kafka_committed.update({tp.partition: o for tp, o in offsets.items()})

    async def check_stalled(self) -> None:
        """Re-seek when records were fetched past what Postgres applied and nothing
        moves: Faust's flow control can drop fetched batches (it clears its queues on a
        rebalance and cancels pending puts), and without newer messages no offset gap
        would ever show it. Postgres' offsets say where to resume, so a needless re-seek
        costs only a refetch."""
        app: Any = self.app
        if app.rebalancing or not self.ready.is_set() or self.batch_lock.locked():
            self._stall = (None, 0)
            return
        applied = self.sink.applied_ends()
        state = (tuple(sorted(self.raw_positions().items())), tuple(sorted(applied.items())))
        ahead = any(pos > applied.get(p, pos) for p, pos in state[0])
        last, ticks = self._stall
        ticks = ticks + 1 if ahead and state == last else 0
        self._stall = (state, ticks)
        if ticks >= STALL_TICKS:
            log.warning("fetched records are not being applied (read positions %s,"
                        " applied %s); seeking back to the stored offsets",
                        dict(state[0]), applied)
            self._stall = (None, 0)
            async with self.batch_lock:
                await self.resync("stalled")

    async def resync(self, why: str = "gap") -> None:
        """After an offset gap: stop the flow, drop what Faust has queued (it is after
        the hole, or stale), seek every raw partition to its stored offset, resume.

        Not during a rebalance: that stops the flow itself and seeks on assignment."""
        app: Any = self.app
        if app.rebalancing:
            return
        consumer = app.consumer
        consumer.stop_flow()
        app.flow_control.suspend()
        app.flow_control.clear()
        try:
            await self.seek_to_stored(why)
        finally:
            if not app.rebalancing:
                app.flow_control.resume()
                consumer.resume_flow()

    async def send_dead(self, dead: Sequence[DeadLetter]) -> None:
        futs = []
        for d in dead:
            body = {
                "partition": d.partition, "offset": d.offset, "error": d.error,
                "topic": self.raw_topic,
                "value_b64": base64.b64encode(d.value or b"").decode(),
            }
            futs.append(await self.dlq.send(key=d.key, value=orjson.dumps(body)))
            DEAD.labels(d.error.split(":", 1)[0]).inc()
        for f in futs:
            await f

    async def handle_batches(self, batches: Sequence[RawBatch]) -> int:
        """Process the fetches the agent took; batches fetched before the latest
        rebalance are dropped (their partitions were sought again since)."""
        async with self.batch_lock:  # checked under the lock a revocation takes
            current = self.app.consumer_generation_id
            if self.revoked:  # between a revocation and the next assignment's seek
                STALE.inc(len(batches))
                return 0
            log.debug("agent took %d fetches (generation %s)", len(batches), current)
            records: list[Any] = []
            for b in batches:
                if b.generation is not None and b.generation != current:
                    STALE.inc()
                    continue
                records.extend(b.records)
            if not records:
                return 0
            return await self.handle(records)

    async def handle(self, events: Sequence[Any]) -> int:
        """Process one batch of raw records (`.partition`, `.offset`, `.key`, `.value`);
        returns the number of new events stored.

        Per event, any exception of decode (the choke point, with the caps of
        `tinytrail.limits`) or of an enrichment step dead-letters that event alone. The
        sink's transient errors are retried with backoff; a data error makes the batch
        split in halves, each committed with its own offsets, until the refused events
        are alone; those are dead-lettered with their reason (`_store`)."""
        await self.ready.wait()
        ph = self.phases
        if ph.batches:
            ph.lap("faust_between_batches")  # Faust: fetch, buffer, build the next batch
        else:
            ph.start()
        self.batch_started = time.monotonic()
        try:
            marks: dict[int, int] = {}
            offsets: dict[int, list[int]] = {}
            decoded: list[Enriched] = []
            dead: list[DeadLetter] = []
            for msg in events:
                p, off = msg.partition, msg.offset
                if off > marks.get(p, -1):
                    marks[p] = off
                seen = offsets.get(p)
                if seen is None:
                    offsets[p] = [off]
                else:
                    seen.append(off)
                try:
                    raw = RawEvent.from_bytes(msg.value)
                    decoded.append(Enriched.from_raw(raw, p, off))
                except DecodeError as exc:
                    dead.append(DeadLetter(p, off, msg.key, msg.value, f"decode: {exc}"))
                except Exception as exc:  # noqa: BLE001 - one event's problem, never the batch's
                    dead.append(DeadLetter(p, off, msg.key, msg.value,
                                           f"decode: {type(exc).__name__}: {exc}"[:400]))
            ph.lap("decode")
            await self._know_websites({e.website_id for e in decoded})
            kept, dropped = await enrich_batch_async(decoded, self.websites.get)
            ph.lap("enrich")
            if dropped:
                original = {(m.partition, m.offset): m for m in events}
                for e, why in dropped:
                    if why.reason.startswith("error"):
                        msg = original[(e.kafka_partition, e.kafka_offset)]
                        dead.append(DeadLetter(e.kafka_partition, e.kafka_offset, msg.key,
                                               msg.value, why.reason))
            self._sent_dead = set()
            res = await self._store(events, kept, dead)
            ph.batches += 1  # counted at commit (the bench stops us as soon as it sees it)
            self.committed += 1
            if res.gaps:
                await self.resync()
            ph.start()
            await self._realtime(res.new_events)
            return len(res.new_events)
        finally:
            self.batch_started = None

    async def _know_websites(self, ids: set[str]) -> None:
        """Refresh the website cache when due and look up `ids` it lacks (one query).
        Transient failures are retried with backoff (as the sink's): an event must not be
        dropped as `unknown_website` because Postgres could not be asked. Any other
        failure is logged, and the batch goes on with what the cache knows."""
        attempt = 0
        while True:
            try:
                await self.websites.maybe_refresh()
                await self.websites.recheck(ids)
                return
            except Exception as exc:  # noqa: BLE001 - classified right here
                if not is_transient(exc):
                    log.exception("website lookup failed; going on with the cache")
                    return
                attempt += 1
                RETRIES.inc()
                log.warning("website lookup failed (%s); retry %d", exc, attempt)
                await asyncio.sleep(backoff(attempt))

    async def _realtime(self, new_events: Sequence[Enriched]) -> None:
        """After COMMIT: the realtime windows and their Redis mirror (approximate; any
        failure is logged and counted, never the batch's)."""
        ph = self.phases
        live = realtime_events(new_events)
        if not live or self.windows is None:
            return
        try:
            now_ms = int(time.time() * 1000)
            visitors, pages, windows = mirror_payload(live, self.windows, now_ms)
            ph.lap("realtime_table")
            if visitors or pages or windows:
                await write_realtime(self.redis, visitors, pages, windows, now_ms)
        except Exception as exc:  # noqa: BLE001 - realtime must never stop the pipeline
            REDIS_FAILED.inc()
            log.warning("realtime update failed: %s", exc)
        ph.lap("realtime_redis")

    async def _send_dead_once(self, dead: Sequence[DeadLetter]) -> None:
        """Send dead letters not yet sent for this batch: a part retried after a data
        error sends its garbage again before its next COMMIT."""
        fresh = [d for d in dead if (d.partition, d.offset) not in self._sent_dead]
        if fresh:
            await self.send_dead(fresh)
            self._sent_dead.update((d.partition, d.offset) for d in fresh)

    async def _store(self, records: Sequence[Any], kept: list[Enriched],
                     dead: list[DeadLetter]) -> BatchResult:
        """Apply `records` (their `kept` events and `dead` letters) in one transaction,
        retrying transient errors for ever with backoff (the liveness probe notices a
        batch stuck too long). On a data error: one event left -> dead-lettered with the
        reason, its offset committed; more -> the records are split in two halves (in
        order, so each half holds a prefix of every partition's offsets) and each is
        stored on its own, recursively. Returns the merged result."""
        marks: dict[int, int] = {}
        offsets: dict[int, list[int]] = {}
        for m in records:
            p, off = m.partition, m.offset
            if off > marks.get(p, -1):
                marks[p] = off
            offsets.setdefault(p, []).append(off)
        attempt = 0
        while True:
            try:
                return await self.sink.apply(kept, marks, dead, self._send_dead_once,
                                             offsets=offsets)
            except psycopg.errors.ForeignKeyViolation:
                # A website was deleted since the last refresh: drop its events.
                try:
                    await self.websites.refresh()
                except Exception as exc:  # noqa: BLE001 - Postgres went away meanwhile
                    attempt += 1
                    log.warning("website refresh failed (%s); retry %d", exc, attempt)
                    await asyncio.sleep(backoff(attempt))
                    continue
                kept = [e for e in kept if self.websites.get(e.website_id) is not None]
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
            return await self._store(
                records, [], [*dead, DeadLetter(e.kafka_partition, e.kafka_offset, msg.key,
                                                msg.value, why)])
        BISECTIONS.inc()
        log.warning("batch refused (%s); splitting %d records, %d events",
                    type(refused).__name__, len(records), len(kept))
        mid = len(records) // 2
        out = BatchResult()
        for part in (records[:mid], records[mid:]):
            coords = {(m.partition, m.offset) for m in part}
            res = await self._store(
                part, [e for e in kept if (e.kafka_partition, e.kafka_offset) in coords],
                [d for d in dead if (d.partition, d.offset) in coords])
            out.new_events.extend(res.new_events)
            out.gaps.extend(res.gaps)
            out.replayed += res.replayed
            out.duplicates += res.duplicates
            out.dead_letters += res.dead_letters
            out.held_back += res.held_back
        return out


class BoundedWorker(faust.Worker):  # type: ignore[misc]
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


class WorkerApp(faust.App):  # type: ignore[misc]
    """Faust app whose consumer hands the raw topic over in bulk (streams/consumer.py)."""

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)


def build_app(settings: WorkerSettings) -> tuple[faust.App, Runtime]:
    app = WorkerApp(
        f"{settings.topic_prefix}-worker",
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=settings.events_partitions,
        topic_replication_factor=settings.topic_replication,
        # No standby copies of the tables: a standby reads every changelog message of
        # the other workers' partitions one by one (Faust's per-message path), which
        # would cost each worker as much as the sessions it writes itself. A partition
        # that moves recovers its changelog instead (docs/STREAMS.md).
        table_standby_replicas=0,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        consumer_auto_offset_reset="earliest",
        web_enabled=settings.worker_web_port > 0,
        web_port=settings.worker_web_port or 6066,
        web_bind="127.0.0.1",
        datadir=settings.worker_data_dir,
        value_serializer="raw",
        key_serializer="raw",
        # A fetch returns at most batch_size / FETCHES_PER_BATCH records; the agent
        # joins up to FETCHES_PER_BATCH of them into one Postgres transaction.
        broker_max_poll_records=max(1, settings.batch_size // FETCHES_PER_BATCH),
        consumer_max_fetch_size=16 * 1024 * 1024,
        # The changelog of the realtime table: a few ms of linger batches a batch's
        # window writes into one produce request per partition.
        producer_linger=0.005,
    )
    rt = Runtime(app, settings)
    rt.windows = app.tables.add(
        KpartTable(app, name="rt_windows", partitions=settings.events_partitions,
                   schema=faust.Schema(key_serializer="json", value_serializer="json"),
                   beacon=app.tables.beacon)
    )
    topic = raw_topic(app, settings)
    app.topics.add(topic)  # subscribed (assignment, co-partitioned tables), read in bulk
    fetched = app.channel(maxsize=2 * FETCHES_PER_BATCH)

    async def deliver(batch: RawBatch) -> None:
        # An in-memory channel drops what is sent before its agent subscribed: the
        # first fetches can come before Faust started the agent.
        await rt.agent_started.wait()
        try:
            await fetched.send(value=batch)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we are being cancelled ourselves
            # Faust cleared the channel (flow control on a rebalance or resync) and
            # cancelled this put: the batch is gone; the stall check re-seeks.
            LOST_FETCHES.inc()

    consumer: Any = app.consumer
    consumer.raw_topic = topic.get_topic_name()
    consumer.deliver = deliver

    @app.agent(fetched, concurrency=1)
    async def process(stream: faust.StreamT) -> None:
        rt.agent_started.set()  # the stream is subscribed to the channel by now
        async for batches in stream.take(FETCHES_PER_BATCH, within=settings.batch_window):
            await rt.handle_batches(batches)

    @app.task
    async def _start() -> None:
        await rt.start()

    @app.on_before_shutdown.connect
    def _phases(sender: Any, **kw: Any) -> None:
        log.info("worker phase totals", extra={
            "batches": rt.phases.batches,
            "phases": {k: round(v, 4) for k, v in rt.phases.totals.items()},
        })

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, revoked: Any, **kw: Any) -> None:
        async with rt.batch_lock:  # let the batch in flight finish first
            rt.revoked = True
            rt.sink.reset()

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **kw: Any) -> None:
        # Runs inside the rebalance, before recovery resumes the partitions; the seek
        # itself happens in `perform_seek` (see `Runtime.install_seek`).
        rt.install_seek()
        rt.sink.reset()
        # Sessions of partitions this worker no longer owns leave memory (Faust keeps
        # what it recovered for them, but not what we wrote); the kept ones stay.
        owned = {tp.partition for tp in rt.raw_tps(assigned)}
        rt.sessions.forget(p for p in range(settings.events_partitions) if p not in owned)

    @app.timer(settings.worker_heartbeat_interval)
    async def _heartbeat() -> None:
        rt.beat()

    @app.timer(5.0)
    async def _commit_applied() -> None:
        await rt.commit_applied()

    @app.timer(1.0)
    async def _stall_check() -> None:
        await rt.check_stalled()

    @app.timer(60.0)
    async def _expire() -> None:
        expire(rt.windows)
        async with rt.batch_lock:  # not while a batch holds copies of these sessions
            await rt.sessions.expire()

    @app.timer(settings.retention_interval, on_leader=False)
    async def _retention() -> None:
        await rt.ready.wait()
        try:
            await run_retention(rt.pool, settings.retention_days, settings.partitions_ahead_days)
        except Exception:
            log.exception("retention run failed")

    app.tt_runtime = rt  # type: ignore[attr-defined]
    app.tt_agent = process  # type: ignore[attr-defined]
    return app, rt


def main() -> int:
    """`tinytrail worker`: run until SIGTERM/SIGINT; exit code."""
    from tinytrail.logs import setup_logging
    from tinytrail.metrics import start_metrics_server
    from tinytrail.settings import load_settings

    settings = load_settings(WorkerSettings)
    setup_logging(settings.log_format, settings.log_level, process="worker")
    if settings.worker_metrics_port:
        start_metrics_server(settings.worker_metrics_port)
    app, rt = build_app(settings)
    worker = BoundedWorker(app, loglevel=settings.log_level.lower(), override_logging=False,
                           redirect_stdouts=False,
                           shutdown_timeout=settings.worker_shutdown_timeout)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    else:
        code = 0
    return code
