"""The worker's runtime: its services and the state Faust's callbacks share.

`Runtime` holds the Postgres pool, Redis, the website cache, the session store, the
realtime windows table, the agent's channel and the sink; its lifecycle (`start`,
`stop`), what Faust calls back (`deliver`, `after_seek`, `on_revoked`, `on_assigned`,
and the timers' `expire`, `retention`), liveness (`progressing`, `idle`, `beat`: the
heartbeat file the liveness probe reads), where raw partitions stand
(`seek_to_stored`, `resync`, `check_stalled`, `commit_applied`; the Postgres side is
`streams/offsets.py`, the Faust side `streams/consumer.py`), dead letters
(`send_dead`) and the entry of the batch path (`handle_batches` -> `handle` ->
`streams/batch.py`). `streams/app.py` wires it into the Faust app.

Where a partition resumes is decided by Postgres (`stream_offsets.next_offset`),
never by Kafka's committed offsets: Faust drops fetched-but-unprocessed messages on
a rebalance and repositions through aiokafka's `seek_to_committed()`, which leaves
partitions without a committed offset where they were (after the dropped messages).
So `BatchingConsumer.perform_seek` - which Faust's recovery calls after resuming the
stream partitions and before resuming the flow, on every assignment - is followed by
a seek of every assigned raw partition to its stored offset (`seek_to_stored`). The
sink refuses to move a fence over a hole (`OffsetGap`); the agent then seeks back
the same way (`resync`). See docs/STREAMS.md ("Resuming at the right offset").
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import pathlib
import time
from collections.abc import Sequence
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from prometheus_client import Counter

from streams.batch import BatchPath, Record
from streams.consumer import (
    BatchingConsumer,
    RawBatch,
    WorkerApp,
    add_kpart_table,
    dlq_topic,
    read_positions,
)
from streams.deadletters import DeadLetter
from streams.offsets import StallCheck
from streams.phases import Phases
from streams.retention import run_retention
from streams.session_state import SessionTable
from streams.settings import WorkerSettings
from streams.sink import Sink
from streams.websites import WorkerWebsites
from streams.windows import expire as expire_windows
from tinytrail.db import make_pool, open_pool
from tinytrail.topics import raw_events_topic

log = logging.getLogger("tinytrail.streams")

DEAD = Counter("tinytrail_dead_letters_total", "Messages sent to the dead-letter topic", ["why"])
SEEKS = Counter(
    "tinytrail_worker_seeks_total", "Seeks of the raw partitions to Postgres' offsets", ["why"]
)
SEEK_FAILED = Counter("tinytrail_worker_seek_failures_total", "Seeks to stored offsets failed")
GC_THRESHOLD = 100_000  # allocations between young-generation collections (default 700)
STALE = Counter("tinytrail_worker_stale_batches_total",
                "Fetched batches dropped: a rebalance happened since the fetch")
LOST_FETCHES = Counter("tinytrail_worker_lost_fetches_total",
                       "Pending deliveries of fetched batches cancelled by Faust's flow control"
                       " (batches cleared from its queue are not counted; the stall check"
                       " re-seeks either way)")
# The agent joins up to this many fetches into one batch (one Postgres transaction); a
# fetch returns at most batch_size / FETCHES_PER_BATCH records (`streams/app.py`).
FETCHES_PER_BATCH = 4


class Runtime:
    """The worker's services (pool, Redis, caches, sink) and the per-batch logic."""

    def __init__(self, app: WorkerApp, settings: WorkerSettings) -> None:
        self.app = app
        self.settings = settings
        self.pool = make_pool(settings, name="worker", max_size=3,
                              statement_timeout=settings.worker_statement_timeout)
        self.redis: Any = None
        self.websites = WorkerWebsites(self.pool, settings.website_refresh_interval,
                                      settings.website_negative_ttl)
        self.phases = Phases()
        self.raw_topic = raw_events_topic(settings)
        self.sessions = SessionTable(app, settings.events_partitions, settings.kafka_bootstrap,
                                     self.raw_topic)
        self.sink = Sink(
            self.pool, group=str(app.conf.id), topic=self.raw_topic,
            store=self.sessions, phases=self.phases,
        )
        self.dlq = dlq_topic(app, settings)
        # The realtime windows table (`streams/windows.py`).
        self.windows: Any = add_kpart_table(app, "rt_windows", settings.events_partitions,
                                            self.raw_topic)
        # The agent's in-memory channel, which `deliver` fills with the consumer's fetches.
        self.fetched = app.channel(maxsize=2 * FETCHES_PER_BATCH)
        self.ready = asyncio.Event()
        self.batch_lock = asyncio.Lock()  # a revocation waits for the batch in flight
        self.agent_started = asyncio.Event()
        # Set when partitions are revoked, cleared once the next assignment sought the
        # stored offsets: batches fetched before must not be applied meanwhile (their
        # partitions may already be another worker's).
        self.revoked = False
        self._stall = StallCheck()
        self._kafka_committed: dict[int, int] = {}
        self._open_lock = asyncio.Lock()
        self.batch = BatchPath(self)
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

    # -- what Faust calls back (bound in `streams/app.py`)
    async def deliver(self, batch: RawBatch) -> None:
        """The consumer's hand-over of one fetch (`BatchingConsumer.bind`): into the
        agent's channel `fetched`. A put that Faust's flow control cancels (it clears the
        channel on a rebalance or a resync) is counted and swallowed: the batch is gone
        and the stall check re-seeks; a cancellation of this task itself propagates."""
        # An in-memory channel drops what is sent before its agent subscribed: the
        # first fetches can come before Faust started the agent.
        await self.agent_started.wait()
        try:
            await self.fetched.send(value=batch)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we are being cancelled ourselves
            LOST_FETCHES.inc()

    async def after_seek(self) -> None:
        """After every `perform_seek` (`BatchingConsumer.bind`): the raw partitions go to
        Postgres' offsets, and batches may be applied again."""
        await self.seek_to_stored("assigned")
        self.revoked = False

    async def on_revoked(self) -> None:
        """Partitions revoked: once the batch in flight is done, apply no batch until
        the next assignment sought the stored offsets (`after_seek`)."""
        async with self.batch_lock:
            self.revoked = True
            self.sink.reset()

    def on_assigned(self, assigned: Any) -> None:
        """Partitions assigned, inside the rebalance, before recovery resumes them (the
        seek itself is `after_seek`'s). Sessions of partitions this worker no longer
        owns leave memory (Faust keeps what it recovered for them, but not what we
        wrote); the kept ones stay."""
        self.sink.reset()
        owned = {tp.partition for tp in self.raw_tps(assigned)}
        self.sessions.forget(p for p in range(self.settings.events_partitions)
                             if p not in owned)

    async def expire(self) -> None:
        """Expired realtime windows and sessions leave the tables."""
        expire_windows(self.windows)
        async with self.batch_lock:  # not while a batch holds copies of these sessions
            await self.sessions.expire()

    async def retention(self) -> None:
        """One retention run (`streams/retention.py`) once started; failures are logged."""
        await self.ready.wait()
        try:
            await run_retention(self.pool, self.settings.retention_days,
                                self.settings.partitions_ahead_days)
        except Exception:
            log.exception("retention run failed")

    def log_phases(self) -> None:
        """At shutdown: the time each batch step took in total (`Phases`)."""
        log.info("worker phase totals", extra={
            "batches": self.phases.batches,
            "phases": {k: round(v, 4) for k, v in self.phases.totals.items()},
        })

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

    async def seek_to_stored(self, why: str) -> None:
        """Seek every assigned raw-topic partition to its stored `next_offset` (one
        Postgres transaction for all of them) and align Faust's bookkeeping with it.

        On failure: logged and counted, not raised. A partition left at a wrong place
        is still safe: ahead of the stored offset, the sink sees a hole and the agent
        resyncs; behind it, the messages are replays and skipped."""
        try:
            await self.open_db()
            consumer = cast(BatchingConsumer, self.app.consumer)  # WorkerApp builds it
            tps = self.raw_tps()
            if not tps:
                return
            earliest = await consumer.earliest_offsets(*tps)
            stored = await self.sink.resume_offsets(
                {tp.partition: int(earliest.get(tp) or 0) for tp in tps}
            )
            targets = {tp: stored[tp.partition] for tp in tps}
            await consumer.seek_to(targets)
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
        return read_positions(self.app.consumer, self.raw_tps())

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
        if offsets and await app.consumer.commit_offsets(offsets):
            self._kafka_committed.update({tp.partition: o for tp, o in offsets.items()})

    async def check_stalled(self) -> None:
        """Re-seek when records were fetched past what Postgres applied and nothing
        moves: Faust's flow control can drop fetched batches (it clears its queues on a
        rebalance and cancels pending puts), and without newer messages no offset gap
        would ever show it. Postgres' offsets say where to resume, so a needless re-seek
        costs only a refetch."""
        app: Any = self.app
        if app.rebalancing or not self.ready.is_set() or self.batch_lock.locked():
            self._stall.reset()
            return
        applied = self.sink.applied_ends()
        positions = self.raw_positions()
        if self._stall.tick(positions, applied):
            log.warning("fetched records are not being applied (read positions %s,"
                        " applied %s); seeking back to the stored offsets",
                        positions, applied)
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

    async def handle(self, records: Sequence[Record]) -> int:
        """Process one batch of raw records (`.partition`, `.offset`, `.key`, `.value`);
        returns the number of new events stored (`streams/batch.py`)."""
        return await self.batch.run(records)
