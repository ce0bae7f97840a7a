"""Compaction of closed days on the real Postgres: every report figure stays identical.

Generated traffic over six days is bulk-loaded (per-partition rows), every
aggregate report is computed for several parameter sets, the closed days are
compacted, and the reports must come out equal to the last digit. A late event
for a compacted day (through the real sink) must then still give the figures of
a rebuild (`tinytrail aggregate`'s path, which compacts old days too).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
import zlib
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from api.reports import custom_events, devices, flow, pages, sources, summary, timeseries
from api.reports.params import parse_params
from streams.bulk import bulk_load
from streams.compaction import COMPACT_KPART, compact_old_days
from streams.enrich import enrich_batch
from streams.models import Enriched
from streams.rebuild import rebuild_days
from streams.sink import Sink
from streams.websites import WorkerWebsites
from tests.streams.gen import traffic
from tests.streams.helpers import MemorySessions, contiguous_offsets, make_sites
from tinytrail.db import make_pool, open_pool
from tinytrail.settings import CoreSettings

PARAMS = (
    {}, {"period": "30d"}, {"period": "30d", "include_bots": "true"},
    {"period": "30d", "compare": "previous_period"}, {"period": "7d", "content_group": "Blog"},
    {"period": "30d", "per_page": "2", "page": "2"},
)
GROUPABLE = ("summary", "pages", "flow", "timeseries")


def kpart(ev: Any) -> int:
    return zlib.crc32(f"{ev.website_id}:{ev.visitor_id}".encode()) % 4


async def all_reports(pool: AsyncConnectionPool, site: str, today: dt.date) -> dict[str, Any]:
    """Every aggregate report for every parameter set, keyed by a readable name."""
    out: dict[str, Any] = {}
    for q in PARAMS:
        p = parse_params(lambda n, q=q: {"website_id": site, **q}.get(n), today)
        tag = ",".join(f"{k}={v}" for k, v in q.items()) or "7d"
        grouped = "content_group" in q
        calls: dict[str, Any] = {
            "summary": summary.compute(pool, p), "pages": pages.compute(pool, p),
            "flow": flow.compute(pool, p),
        }
        for metric in timeseries.METRICS:
            for path in (None, "/blog/a"):
                calls[f"timeseries {metric} {path}"] = timeseries.compute(
                    pool, p, timeseries.Extra(metric, path))
        if not grouped:
            calls["devices"] = devices.compute(pool, p)
            calls["custom-events"] = custom_events.compute(pool, p, None)
            for g in ("channel", "domain", "utm"):
                calls[f"sources {g}"] = sources.compute(pool, p, g)
        for name, coro in calls.items():
            out[f"{name} [{tag}]"] = await coro
    return out


def row_counts(dsn: str, site: str) -> tuple[int, int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM agg_dim_daily WHERE website_id = %(w)s),"
            " (SELECT count(*) FROM agg_dim_daily WHERE website_id = %(w)s AND kpart = %(c)s),"
            " (SELECT count(DISTINCT day) FROM agg_site_daily WHERE website_id = %(w)s"
            "  AND kpart >= 0)", {"w": site, "c": COMPACT_KPART},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return [k for k in a if a[k] != b.get(k)]


@pytest.mark.postgres
async def test_compaction_keeps_every_report_figure(core_settings: CoreSettings) -> None:
    dsn = core_settings.database_url
    sites = make_sites(dsn, 1)
    site = sites[0][0]
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    start = dt.datetime.combine(today - dt.timedelta(days=5), dt.time(), dt.UTC)
    start_ms = int(start.timestamp() * 1000)
    raws = traffic(random.Random(21), sites, 4000, start_ms,
                   int(now.timestamp() * 1000) - start_ms - 60_000, visitors=120)
    raws.sort(key=lambda r: r.received_at_ms)
    pool = make_pool(core_settings, name="t", max_size=2)
    await open_pool(pool)
    try:
        await bulk_load(pool, raws, kpart_of=kpart)
        before = await all_reports(pool, site, today)
        assert before["summary [period=30d]"]["metrics"]["visits"]["value"] > 0
        rows0, compacted0, open0 = row_counts(dsn, site)
        assert compacted0 == 0 and open0 == 6

        days = await compact_old_days(pool, today)  # other tests' days may be there too
        assert {today - dt.timedelta(days=i) for i in range(5, 1, -1)} <= set(days)
        assert max(days) == today - dt.timedelta(days=2)
        rows1, compacted1, open1 = row_counts(dsn, site)
        assert open1 == 2 and compacted1 > 0 and rows1 < rows0  # today and yesterday open
        after = await all_reports(pool, site, today)
        assert not diff(before, after), diff(before, after)
        assert await compact_old_days(pool, today) == []  # idempotent
        assert row_counts(dsn, site) == (rows1, compacted1, open1)

        # A late event for a compacted day: it continues a loaded visit (its figures
        # move: a bounce may stop being one), through the real sink.
        old = next(r for r in raws if r.received_at_ms < start_ms + 86_400_000
                   and r.event_type == "page_view" and not r.is_excluded)
        late = dataclasses.replace(old, event_id=str(uuid.uuid4()), path="/pricing",
                                   received_at_ms=old.received_at_ms + 1000)
        ev = Enriched.from_raw(late, kpart(late), 0)
        cache = WorkerWebsites(pool)
        await cache.refresh()
        kept, _ = enrich_batch([ev], cache.get)
        sink = Sink(pool, group="late", topic="raw", store=MemorySessions())
        assert len((await sink.apply(
            kept, {ev.kafka_partition: 0},
            offsets=contiguous_offsets(kept, {ev.kafka_partition: 0}))).new_events) == 1
        assert row_counts(dsn, site)[2] == 3  # the old day has a kpart row again
        streamed = await all_reports(pool, site, today)
        assert diff(after, streamed)  # the late event shows
        await rebuild_days(pool, start.date(), today,
                           compact_before=today - dt.timedelta(days=1))
        assert row_counts(dsn, site)[2] == 2
        rebuilt = await all_reports(pool, site, today)
        assert not diff(streamed, rebuilt), diff(streamed, rebuilt)
    finally:
        await pool.close()
