"""The batch sink on the real Postgres: stream figures == rebuild, replays change nothing."""

from __future__ import annotations

import datetime as dt
import random
import zlib

import psycopg
import pytest

from streams.enrich import enrich_batch
from streams.models import Enriched
from streams.rebuild import rebuild_days
from streams.sink import Sink
from streams.websites import WorkerWebsites
from tests.streams.gen import traffic
from tests.streams.helpers import MemorySessions, contiguous_offsets, make_sites, snapshot
from tinytrail.db import make_pool, open_pool
from tinytrail.settings import CoreSettings

PARTS = 4


def to_messages(raws: list, start_offsets: dict[int, int]) -> list[Enriched]:
    out = []
    for r in raws:
        p = zlib.crc32(r.key) % PARTS
        off = start_offsets.get(p, 0)
        start_offsets[p] = off + 1
        out.append(Enriched.from_raw(r, p, off))
    return out


async def feed(sink: Sink, cache: WorkerWebsites, msgs: list[Enriched]) -> int:
    await cache.maybe_refresh()
    kept, _ = enrich_batch(msgs, cache.get)
    marks: dict[int, int] = {}
    for m in msgs:
        marks[m.kafka_partition] = max(marks.get(m.kafka_partition, -1), m.kafka_offset)
    res = await sink.apply(kept, marks, offsets=contiguous_offsets(kept, marks))
    return len(res.new_events)


@pytest.mark.postgres
async def test_batches_replays_and_duplicates_equal_the_rebuild(
    core_settings: CoreSettings,
) -> None:
    dsn = core_settings.database_url
    sites = make_sites(dsn, 2)
    rng = random.Random(7)
    day0 = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = int((day0 - dt.timedelta(days=1)).timestamp() * 1000) + 22 * 3600 * 1000
    raws = traffic(rng, sites, 1500, start, 4 * 3600 * 1000)  # crosses midnight
    offsets: dict[int, int] = {}
    msgs = to_messages(raws, offsets)
    dupes = to_messages(rng.sample(raws, 50), offsets)  # same events produced again
    pool = make_pool(core_settings, name="t", max_size=2)
    await open_pool(pool)
    try:
        cache = WorkerWebsites(pool)
        sink = Sink(pool, group="g", topic="raw", store=MemorySessions())
        applied = 0
        i = 0
        while i < len(msgs):
            n = rng.randint(1, 300)
            applied += await feed(sink, cache, msgs[i : i + n])
            i += n
        # A replay of already-applied messages (a crash after COMMIT) and a restart.
        sink2 = Sink(pool, group="g", topic="raw", store=MemorySessions())
        assert await feed(sink2, cache, msgs[:400]) == 0
        assert await feed(sink2, cache, dupes) == 0
        assert applied == len(raws)
        with psycopg.connect(dsn) as conn:
            q = ("SELECT count(*), count(DISTINCT event_id) FROM events"
                 " WHERE website_id::text = ANY(%s)")
            stored = conn.execute(q, ([s for s, _ in sites],)).fetchone()
        assert stored == (len(raws), len(raws))
        stream = snapshot(dsn, [s for s, _ in sites])
        assert stream[0] and stream[1]
        first = (day0 - dt.timedelta(days=1)).date()
        await rebuild_days(pool, first, day0.date())
        assert snapshot(dsn, [s for s, _ in sites]) == stream
        # Idempotent.
        await rebuild_days(pool, first, day0.date())
        assert snapshot(dsn, [s for s, _ in sites]) == stream
    finally:
        await pool.close()
