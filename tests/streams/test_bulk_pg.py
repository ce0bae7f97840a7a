"""streams.bulk on the real Postgres: what it loads equals the rebuild of the stored events."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import zlib

import psycopg
import pytest

from streams.bulk import bulk_load
from streams.rebuild import rebuild_days
from tests.streams.gen import traffic
from tests.streams.helpers import make_sites, snapshot
from tinytrail.db import make_pool, open_pool
from tinytrail.settings import CoreSettings

NIL = "00000000-0000-0000-0000-000000000000"


def kpart(ev: object) -> int:
    return zlib.crc32(f"{ev.website_id}:{ev.visitor_id}".encode()) % 4  # type: ignore[attr-defined]


@pytest.mark.postgres
async def test_bulk_load_equals_rebuild_and_refuses_bad_input(
    core_settings: CoreSettings,
) -> None:
    dsn = core_settings.database_url
    sites = make_sites(dsn, 2)
    ids = [s for s, _ in sites]
    day0 = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = day0 - dt.timedelta(days=40)
    raws = traffic(random.Random(9), sites, 3000, int(start.timestamp() * 1000),
                   3 * 86_400_000, visitors=60)
    raws.sort(key=lambda r: r.received_at_ms)  # grouped by day
    unknown_site = [r for r in raws[:1]]
    pool = make_pool(core_settings, name="t", max_size=2)
    await open_pool(pool)
    try:
        stats = await bulk_load(pool, [*raws, *raws[-5:]], kpart_of=kpart)
        assert (stats.events, stats.duplicates, stats.days) == (len(raws), 5, 3)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT e.event_id::text, e.session_id::text, e.is_excluded, e.session_id"
                " IS NOT NULL, e.kafka_partition FROM events e"
                " WHERE e.website_id::text = ANY(%s)", (ids,),
            ).fetchall()
        assert sorted(r[0] for r in rows) == sorted(r.event_id for r in raws)
        assert all((sid == NIL) == excl and (excl or has) for _, sid, excl, has, _ in rows)
        assert {r[4] for r in rows} == {0, 1, 2, 3}
        assert stats.sessions == len({r[1] for r in rows if r[1] != NIL})
        loaded = snapshot(dsn, ids)
        assert loaded[0] and loaded[1]
        await rebuild_days(pool, start.date(), start.date() + dt.timedelta(days=2))
        assert snapshot(dsn, ids) == loaded
        # A day already holding these websites' events is refused, nothing written.
        with pytest.raises(ValueError, match="already has events"):
            await bulk_load(pool, unknown_site)
        assert snapshot(dsn, ids) == loaded
        # Input that goes back to an earlier day is refused (days before it are loaded).
        other = make_sites(dsn, 1)
        a1, b, a2 = traffic(random.Random(1), other, 3, int(start.timestamp() * 1000), 1000)
        b = dataclasses.replace(b, received_at_ms=b.received_at_ms + 86_400_000)
        with pytest.raises(ValueError, match="grouped by UTC day"):
            await bulk_load(pool, [a1, b, a2])
    finally:
        await pool.close()
