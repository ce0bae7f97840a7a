"""Bulk loader for benchmarks and backfills: events (with session ids) and aggregates.

`bulk_load(pool, events)` takes generated or historical events (`Enriched`, or
`RawEvent` which it enriches with the workers' own pipeline), one UTC day at a
time, and writes what the stream would have written for them arriving in time
order:
  * sessions by the stream's rule (`streams.sessions.joins`: same visitor key,
    at most 30 minutes after the visit's last event), each event stamped with
    its session id; excluded events get the nil session and no figures;
  * the aggregate figures through the SAME `apply_event` / `add_change` code the
    sink and the rebuild use, so `rebuild_days` over the loaded days gives the
    same rows (tested in tests/streams/test_bulk_pg.py);
  * `COPY` for events, one upsert per aggregate table per day
    (`streams.aggregates.write_deltas`), all of one day in ONE transaction under the
    day's exclusive advisory lock (the one the rebuild takes), so a worker batch
    for that day never interleaves.

Input: grouped by UTC day (days in any order, events of a day in any order); a
day that comes back after another day started raises ValueError, which keeps
memory to one day of events. Event ids repeated in the input are stored once.
A day that already holds events of a website being loaded is refused
(ValueError): its sessions would be split between two sessionisations.

Kafka partition (`kpart`) of each event: `kpart_of(event)` when given, else the
event's own `kafka_partition` (0 for a `RawEvent`). Any value gives exact sums;
it only decides how rows spread, as in the stream.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from streams.aggregates import EVENT_COLUMNS, event_row, lock_day, write_deltas
from streams.models import NIL_SESSION, Enriched
from streams.sessions import (
    Deltas,
    Session,
    assign_sessions,
    session_key,
)
from tinytrail.days import day_date, day_of
from tinytrail.db import Pool
from tinytrail.event import RawEvent


@dataclass
class BulkStats:
    events: int = 0  # stored (excluded ones included)
    duplicates: int = 0  # repeated event ids in the input, stored once
    dropped: int = 0  # RawEvents the enrichment dropped (unknown website, ...)
    sessions: int = 0
    days: int = 0
    rows: int = 0  # aggregate rows written (upserted)
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def sessionise(events: list[Enriched], acc: Deltas) -> list[Session]:
    """Assign sessions as the stream does for in-order arrival; add the figures to `acc`.

    Example: one visitor's events at 10:00, 10:20, 10:55 -> two sessions
    (10:00-10:20, then 10:55: 35 minutes after 10:20 > 30); the first one has
    first_of_day=True (it counts the visitor), the second False.
    """
    live = sorted((e for e in events if not e.is_excluded),
                  key=lambda e: (session_key(e), e.received_at_ms, e.event_id))
    # Arrival in time order means offsets in time order: the rebuild counts a visitor
    # with the session of its lowest offset, as the stream does (streams/rebuild.py).
    for n, e in enumerate(sorted(live, key=lambda e: (e.received_at_ms, e.event_id))):
        e.kafka_offset = n
    for e in events:
        if e.is_excluded:
            e.session_id = NIL_SESSION
    return assign_sessions(live, {}, acc)


async def _website_lookup(pool: Pool) -> Callable[[str], object]:
    from streams.websites import WorkerWebsites

    cache = WorkerWebsites(pool)
    await cache.refresh()
    return cache.get


async def _load_day(
    pool: Pool, day: int, events: list[Enriched], stats: BulkStats
) -> None:
    acc = Deltas()
    sessions = sessionise(events, acc)
    rows = acc.nonzero()
    date = day_date(day)
    sites = sorted({e.website_id for e in events})
    async with pool.connection() as conn:
        await conn.execute("SELECT tinytrail_ensure_event_partitions(%s, 1)", (date,))
        async with conn.transaction():
            await lock_day(conn, day)
            start = dt.datetime.combine(date, dt.time(), dt.UTC)
            cur = await conn.execute(
                "SELECT website_id::text AS w FROM events WHERE received_at >= %s"
                " AND received_at < %s AND website_id = ANY(%s::uuid[]) LIMIT 1",
                (start, start + dt.timedelta(days=1), sites),
            )
            taken = await cur.fetchone()
            if taken is not None:
                w = taken["w"] if isinstance(taken, dict) else taken[0]
                raise ValueError(f"{date}: website {w} already has events that day")
            c = conn.cursor()
            async with c.copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as cp:
                for e in events:
                    await cp.write_row(event_row(e))
            await write_deltas(c, rows)
    stats.events += len(events)
    stats.sessions += len(sessions)
    stats.rows += len(rows)
    stats.days += 1


async def bulk_load(
    pool: Pool,
    events: Iterable[Enriched | RawEvent],
    *,
    kpart_of: Callable[[Enriched], int] | None = None,
    progress: Callable[[dt.date, int], None] | None = None,
) -> BulkStats:
    """Store `events` (grouped by UTC day) with their sessions and aggregates; see module doc.

    `progress(day, events)` is called after each day is committed."""
    from streams.enrich import enrich_batch

    t0 = time.perf_counter()
    stats = BulkStats()
    lookup: Callable[[str], object] | None = None
    done: set[int] = set()
    day: int | None = None
    chunk: list[Enriched] = []  # the current day's events, enriched
    raws: list[Enriched] = []  # the current day's RawEvents, enriched at the day's end
    seen: set[str] = set()

    async def flush() -> None:
        nonlocal lookup, chunk, raws
        if raws:
            if lookup is None:
                lookup = await _website_lookup(pool)
            kept, dropped = enrich_batch(raws, lookup)  # type: ignore[arg-type]
            stats.dropped += len(dropped)
            chunk.extend(kept)
        if chunk:
            assert day is not None
            await _load_day(pool, day, chunk, stats)
            if progress is not None:
                progress(day_date(day), len(chunk))
        chunk, raws = [], []

    for n, item in enumerate(events):
        is_raw = isinstance(item, RawEvent)
        ev = Enriched.from_raw(item, 0, n) if isinstance(item, RawEvent) else item
        d = day_of(ev.received_at_ms)
        if d != day:
            await flush()
            if d in done:
                raise ValueError(f"events of {day_date(d)} come back after another day: "
                                 "bulk_load needs its input grouped by UTC day")
            if day is not None:
                done.add(day)
            day, seen = d, set()
        if ev.event_id in seen:
            stats.duplicates += 1
            continue
        seen.add(ev.event_id)
        if kpart_of is not None:
            ev.kafka_partition = kpart_of(ev)
        (raws if is_raw else chunk).append(ev)
    await flush()
    stats.seconds = time.perf_counter() - t0
    return stats
