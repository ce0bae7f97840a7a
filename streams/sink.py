"""The batch sink: one Postgres transaction per batch makes the stream exact.

Per batch, in ONE transaction (docs/RULES.md, "Exactly once"):
  1. lock this batch's partition rows in `stream_offsets` (FOR UPDATE) and skip
     every message below the stored `next_offset` (already applied: a replay);
  2. take `pg_advisory_xact_lock_shared(ns, day)` for every day touched, so a
     rebuild (exclusive lock on its day) never interleaves with a batch;
  3. skip events whose (received_at, event_id) is already stored (the same event
     produced twice); only the really new events go on;
  4. assign them to sessions (the visitor's latest session of the day, from the
     session store: the worker's Faust table, streams/session_state.py), compute
     the aggregate deltas (per-event counts + contribution(after) -
     contribution(before) per session);
  5. COPY the new events (each with its `session_id`) into `events`, add the
     combined deltas to `agg_site_daily` / `agg_dim_daily`, and advance
     `stream_offsets`.
A crash anywhere before COMMIT leaves nothing; after COMMIT the replayed
messages are below `next_offset` and are skipped.

The fence never moves over a hole. The raw topic is written without transactions
and never compacted, so its offsets are dense: a partition's messages from the stored
`next_offset` E on must arrive as E, E+1, E+2, ... Only the run of this batch's
offsets that starts at E and has no hole is applied, and `next_offset` moves to the
end of that run. Worked example: stored E = 10, batch offsets {20..29} -> nothing of
that partition applied, `next_offset` stays 10, `OffsetGap(p, expected=10,
found=20)`; batch {8, 9, 10, 11, 13} -> 8, 9 are replays, 10, 11 applied, 13 not,
`next_offset` = 12, `OffsetGap(p, 12, 13)`. The caller seeks the partition back to
`expected` (`Runtime.resync`). A transactional producer would leave holes (commit
markers, aborted records) and would need this relaxed to "no hole except where the
broker says there is no record". The aggregate upserts use
`x = agg.x + EXCLUDED.x`: that is safe ONLY because they commit atomically with
the offsets and event rows that fence them (docs/RULES.md, "Additive upserts only under the fence").

The session store is written only after COMMIT (the batch works on copies of
the sessions it touches), and it is reloaded from the stored events for a partition
whose stored offset is neither the one this process wrote last nor the one the
store says it matches (a crash lost changelog writes, or another worker wrote the
partition meanwhile): see streams/session_state.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import psycopg
from prometheus_client import Counter, Histogram

from streams.aggregates import EVENT_COLUMNS, event_row, lock_days_shared, write_deltas
from streams.deadletters import DeadLetter, DeadLetterSender
from streams.models import NIL_SESSION, Enriched
from streams.offsets import OffsetGap, contiguous_end, lock_fence, move_fence, resume_offsets
from streams.phases import Phases
from streams.session_state import SessionStore, lookup
from streams.sessions import (
    Deltas,
    Session,
    SessionKey,
    assign_sessions,
    session_key,
)
from tinytrail.days import day_date, day_of
from tinytrail.db import Pool

log = logging.getLogger("tinytrail.streams.sink")

BATCH_SECONDS = Histogram(
    "tinytrail_sink_batch_seconds", "Postgres time per committed batch",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
APPLIED = Counter("tinytrail_events_applied_total", "Events stored and aggregated (new)")
REPLAYED = Counter("tinytrail_events_replayed_total", "Messages skipped: below stored offset")
DUPLICATES = Counter("tinytrail_events_duplicate_total", "Events skipped: id already stored")
DEDUP_RETRIES = Counter(
    "tinytrail_sink_dedup_retries_total", "Batches redone after a stored duplicate event"
)
OFFSET_GAPS = Counter(
    "tinytrail_sink_offset_gaps_total",
    "Batches with a hole after a partition's stored next offset (not applied past it)",
    ["partition"],
)
DEDUP_CHECK_BATCHES = 20  # after a duplicate, look ids up first for this many batches
EXCLUDED = Counter("tinytrail_events_excluded_total", "Excluded events stored, not aggregated")

class PartitionKeeper:
    """Makes sure the daily `events` partition exists before a day's events are inserted."""

    def __init__(self) -> None:
        self._known: set[int] = set()

    async def ensure(self, pool: Pool, days: Iterable[int]) -> None:
        missing = sorted(set(days) - self._known)
        if not missing:
            return
        async with pool.connection() as conn:
            for d in missing:
                await conn.execute(
                    "SELECT tinytrail_ensure_event_partitions(%s, 1)", (day_date(d),)
                )
        self._known.update(missing)

    def forget(self) -> None:
        self._known.clear()


@dataclass
class BatchResult:
    new_events: list[Enriched] = field(default_factory=list)
    replayed: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    gaps: list[OffsetGap] = field(default_factory=list)
    held_back: int = 0  # messages at or after a hole: not applied, to be delivered again

    def merge(self, other: BatchResult) -> None:
        """Add `other` (the result of another part of the same batch) to this one."""
        self.new_events.extend(other.new_events)
        self.gaps.extend(other.gaps)
        self.replayed += other.replayed
        self.duplicates += other.duplicates
        self.dead_letters += other.dead_letters
        self.held_back += other.held_back


class Sink:
    """Applies decoded, enriched batches to Postgres exactly once (see module doc)."""

    def __init__(
        self, pool: Pool, *, group: str, topic: str,
        store: SessionStore, phases: Phases | None = None,
    ) -> None:
        self.pool = pool
        self.group = group
        self.topic = topic
        self.store = store
        self.partitions = PartitionKeeper()
        self.phases = phases or Phases()
        self._expected_next: dict[int, int] = {}
        self._applied: dict[int, int] = {}  # partition -> next offset in Postgres, as last seen
        self._check_left = 0  # batches that still look stored event ids up first

    def reset(self) -> None:
        """Forget which offsets this process wrote last (rebalance, rollback): the next
        batch of each partition checks the session store against the stored offset."""
        self._expected_next.clear()

    def seeked(self, stored: Mapping[int, int]) -> None:
        """The consumer was just positioned at these stored next offsets."""
        self._applied.update(stored)

    def applied_ends(self) -> dict[int, int]:
        """Partition -> the next offset Postgres holds for it, as this process last saw
        (from the last seek or the last committed batch; `reset` keeps it)."""
        return dict(self._applied)

    async def resume_offsets(self, earliest: Mapping[int, int]) -> dict[int, int]:
        """Partition -> stored `next_offset` for this group and topic; `earliest`:
        partition -> the broker's first offset still held (`streams.offsets.resume_offsets`)."""
        return await resume_offsets(self.pool, self.group, self.topic, earliest)

    async def apply(
        self,
        events: Sequence[Enriched],
        watermarks: dict[int, int],
        dead: Sequence[DeadLetter] = (),
        send_dead: DeadLetterSender | None = None,
        *,
        offsets: Mapping[int, Collection[int]],
    ) -> BatchResult:
        """Apply one batch. `watermarks`: partition -> highest offset seen in this batch
        (decoded or not), so that dropped and dead messages advance the offsets too.
        `offsets`: partition -> EVERY offset in this batch (decoded or not, repeats
        allowed); the fence applies only the hole-free run from the stored next
        offset (module doc). Partitions that could not be applied past a hole are in
        `result.gaps`."""
        ph = self.phases
        ph.start()
        await self.partitions.ensure(self.pool, {day_of(e.received_at_ms) for e in events})
        t0 = time.perf_counter()
        check = self._check_left > 0
        self._check_left = max(self._check_left - 1, 0)
        sent = False

        async def send_once(batch: Sequence[DeadLetter]) -> None:
            # A redone batch (duplicate found) must not dead-letter its garbage twice.
            nonlocal sent
            if not sent and send_dead is not None:
                await send_dead(batch)
            sent = True

        while True:
            try:
                async with self.pool.connection() as conn:
                    async with conn.transaction():
                        res, touched, ends = await self._apply_tx(
                            conn, events, watermarks, offsets, dead, send_once, check
                        )
                        ph.lap("pg_offsets")
                    ph.lap("pg_commit")
            except psycopg.errors.UniqueViolation:
                # An event of this batch is stored already (produced twice): nothing was
                # written; do the batch again, this time looking the ids up first.
                self.reset()
                if check:
                    raise
                check, self._check_left = True, DEDUP_CHECK_BATCHES
                DEDUP_RETRIES.inc()
                continue
            except BaseException:
                self.reset()
                raise
            break
        self._applied.update(ends)
        try:
            await self.store.publish(touched, ends)
        except Exception:
            # Committed, but the changelog may lack this batch: a later mark must not
            # vouch for it, so these partitions are reloaded (and rewritten) first.
            self.store.invalidate(ends)
            for p in ends:
                self._expected_next.pop(p, None)
            log.exception("session store write failed; the partitions will be reloaded")
        else:
            self._expected_next.update(ends)
        ph.lap("session_store")
        for g in res.gaps:
            OFFSET_GAPS.labels(str(g.partition)).inc()
            log.warning(
                "offset gap: partition %d resumes at %d, the batch went on at %d; %d"
                " messages held back", g.partition, g.expected, g.found, res.held_back,
                extra={"partition": g.partition, "expected": g.expected, "found": g.found},
            )
        BATCH_SECONDS.observe(time.perf_counter() - t0)
        APPLIED.inc(len(res.new_events))
        REPLAYED.inc(res.replayed)
        DUPLICATES.inc(res.duplicates)
        return res

    async def _apply_tx(
        self,
        conn: psycopg.AsyncConnection[dict[str, object]],
        events: Sequence[Enriched],
        watermarks: Mapping[int, int],
        offsets: Mapping[int, Collection[int]],
        dead: Sequence[DeadLetter],
        send_dead: DeadLetterSender | None,
        check: bool = True,
    ) -> tuple[BatchResult, list[Session], dict[int, int]]:
        ph = self.phases
        res = BatchResult()
        parts = sorted(watermarks)
        cur = conn.cursor()
        ph.lap("pg_begin")
        # 1. Offsets fence: lock this batch's partitions, read what is applied already.
        fence = await lock_fence(cur, self.group, self.topic, dict.fromkeys(parts, 0))
        for p in parts:
            if self._expected_next.get(p) != fence[p] and not self.store.current(p, fence[p]):
                # The store is behind Postgres here (lost changelog writes, or another
                # worker wrote p meanwhile): rebuild p's sessions under the row lock.
                why = "first" if p not in self._expected_next else "moved"
                await self.store.reload(cur, p, fence[p], why)
                ph.lap("session_reload")
        # Where each partition's applied run ends (exclusive): never past a hole.
        ends: dict[int, int] = {}
        for p in parts:
            ends[p] = contiguous_end(fence[p], offsets.get(p, ()))
            above = [o for o in offsets.get(p, ()) if o >= ends[p]]
            if above:
                res.gaps.append(OffsetGap(p, ends[p], min(above)))
                res.held_back += len(above)
        fresh = [e for e in events
                 if fence[e.kafka_partition] <= e.kafka_offset < ends[e.kafka_partition]]
        res.replayed = sum(1 for e in events if e.kafka_offset < fence[e.kafka_partition])
        # A message delivered twice in one batch (a seek back while it was queued) is
        # dead-lettered once.
        dead_fresh = list({(d.partition, d.offset): d for d in dead
                           if fence[d.partition] <= d.offset < ends[d.partition]}.values())
        if dead_fresh and send_dead is not None:
            await send_dead(dead_fresh)  # at least once: before COMMIT
        res.dead_letters = len(dead_fresh)
        # 2. Shared day locks (the rebuild takes them exclusively), in day order, one trip.
        await lock_days_shared(cur, {day_of(e.received_at_ms) for e in fresh})
        ph.lap("pg_fence")
        # 3. Drop repeats inside the batch, and (when `check`) events already stored (the
        # same event produced twice). Unchecked, a stored one makes the COPY below fail
        # on the primary key and `apply` redoes the batch checked: stored duplicates are
        # rare, and the lookup is a tenth of the batch's Postgres time.
        # Times go as epoch ms (bigint[]): building 5,000 datetimes costs more than the query.
        seen: set[str] = set()
        if check and fresh:
            await cur.execute(
                "SELECT n.id::text AS id FROM unnest(%s::bigint[], %s::uuid[]) AS n(ms, id)"
                " JOIN events e ON e.received_at = timestamptz 'epoch' + n.ms * interval '1 ms'"
                " AND e.event_id = n.id",
                ([e.received_at_ms for e in fresh], [e.event_id for e in fresh]),
            )
            seen = {str(r["id"]) for r in await cur.fetchall()}
        new: list[Enriched] = []
        for e in fresh:
            if e.event_id not in seen:
                seen.add(e.event_id)
                new.append(e)
        res.duplicates = len(fresh) - len(new)
        ph.lap("pg_dedup")
        # 4. Sessions and deltas.
        deltas = Deltas()
        touched = await self._sessionise(cur, new, deltas)
        # 5. Writes.
        if new:
            async with cur.copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as cp:
                for e in new:
                    await cp.write_row(event_row(e))
        ph.lap("pg_copy_events")
        await write_deltas(cur, deltas)
        ph.lap("pg_upsert_aggs")
        await move_fence(cur, self.group, self.topic,
                         {p: ends[p] for p in parts if ends[p] > fence[p]})
        res.new_events = new
        return res, touched, ends

    async def _sessionise(
        self, cur: psycopg.AsyncCursor[dict[str, object]], new: list[Enriched], deltas: Deltas,
    ) -> list[Session]:
        """Join `new` to sessions, add their deltas; returns the touched sessions (new
        ones, and copies of the stored ones grown here: the store is not changed)."""
        live = [e for e in new if not e.is_excluded]
        EXCLUDED.inc(len(new) - len(live))
        for e in new:
            if e.is_excluded:
                e.session_id = NIL_SESSION
        if not live:
            return []
        # Latest session per key from the store; a miss on a day the store holds
        # completely means "none yet", a miss before its floor is looked up (rare).
        store = self.store
        latest: dict[SessionKey, Session | None] = {}
        misses: list[SessionKey] = []
        floors: dict[int, int] = {}
        for e in live:
            k = session_key(e)
            if k in latest:
                continue
            s = latest[k] = store.get(k)
            if s is None:
                floor = floors.get(k[4])
                if floor is None:
                    floor = floors[k[4]] = store.floor(k[4])
                if k[2] < floor:
                    misses.append(k)
        if misses:
            latest.update(await lookup(cur, misses))
        self.phases.lap("pg_session_lookup")
        # Copies of stored sessions; their "before" figures are subtracted when first
        # touched, the "after" figures added at the end (streams.sessions).
        touched = assign_sessions(live, latest, deltas)
        self.phases.lap("sessionise")
        return touched
