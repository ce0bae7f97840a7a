"""Deterministic reproduction of the lost-events bug behind the flaky two-worker test.

Not collected by pytest on purpose (it fails while the bug exists, and the suite
must stay green): run it by hand against the local Postgres,

    python -m tests.streams.repro_offset_gap        # exit 1 = bug present, 0 = fixed

The sink trusts that every batch of a partition starts at or below the stored
`stream_offsets.next_offset`. It advances `next_offset` to (highest offset in the
batch + 1) and skips everything below it as "already applied". When a batch for
partition p arrives whose lowest offset is ABOVE the stored next offset (the
messages in between were delivered to no one yet, e.g. around a rebalance), the
sink applies it and moves the fence over the hole; when the missing messages then
arrive they are below the fence and are skipped as replays: lost, silently.

Here: offsets 0-9 of partition 0 (applied), then 20-29 (a hole at 10-19), then
10-19, which the sink reports as replayed. Observed in the two-worker broker test:
"partition 3: offsets 0-499 never stored; stored next_offset 1454". How the worker gets
such a batch: on a rebalance Faust drops the messages it fetched but had not processed
(`flow_control.clear()`) and repositions through aiokafka's `seek_to_committed()`, which
does not seek a partition without a committed offset; a partition that stays with the
worker then resumes AFTER the dropped messages. See docs/STREAMS.md ("Known bug").
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid

import psycopg
from psycopg import sql

from streams.enrich import enrich_batch
from streams.models import Enriched
from streams.sink import Sink
from streams.websites import WebsiteCache
from tests.streams.gen import traffic
from tests.streams.helpers import make_sites
from tinytrail.db import make_pool, open_pool
from tinytrail.migrate import apply_migrations
from tinytrail.settings import CoreSettings


async def scenario(dsn: str) -> int:
    sites = make_sites(dsn, 1)
    now = int(time.time() * 1000)
    raws = traffic(random.Random(1), sites, 30, now - 60_000, 50_000, excluded_share=0)
    msgs = [Enriched.from_raw(r, 0, i) for i, r in enumerate(raws)]
    pool = make_pool(CoreSettings(database_url=dsn), name="repro", max_size=1)
    await open_pool(pool)
    try:
        cache = WebsiteCache(pool)
        await cache.refresh()
        sink = Sink(pool, group="g", topic="raw")
        stored = 0
        for lo, hi in ((0, 10), (20, 30), (10, 20)):  # the hole 10-19 arrives last
            kept, _ = enrich_batch(msgs[lo:hi], cache.get)
            res = await sink.apply(kept, {0: hi - 1})
            print(f"batch offsets {lo}-{hi - 1}: {len(res.new_events)} stored, "
                  f"{res.replayed} skipped as replays")
            stored += len(res.new_events)
    finally:
        await pool.close()
    print(f"{stored} of {len(msgs)} events stored")
    return 0 if stored == len(msgs) else 1


def main() -> int:
    server = os.environ.get("TINYTRAIL_DATABASE_URL", CoreSettings().database_url)
    name = f"tt_repro_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = server.rsplit("/", 1)[0] + "/" + name
    try:
        apply_migrations(dsn)
        return asyncio.run(scenario(dsn))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


if __name__ == "__main__":
    sys.exit(main())
