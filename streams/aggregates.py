"""The stored shapes the worker writes, and the one writer of aggregate deltas.

Shared by the stream (`streams/sink.py`), the bulk load (`streams/bulk.py`), the
rebuild (`streams/rebuild.py`) and compaction (`streams/compaction.py`). No Faust
import here: `api/admin.py` reaches `streams.rebuild` through this module without
loading the stream framework.

* `events` rows: `EVENT_COLUMNS` / `event_row(Enriched)`.
* Aggregate deltas: key (website, day ordinal, is_bot, kpart, dim, key, grp), dim '' =
  site row, dim "page:CC" = `agg_page_country_daily`; value: 9 counters in the
  order of `streams.sessions` (visitors, visits, pageviews, unique, entries, exits,
  bounces, duration, events). `write_deltas` adds them in one statement per table.
* The day lock: `(ADVISORY_NS, day ordinal)`. The sink takes it shared for every
  day of a batch (`lock_days_shared`); rebuild, bulk and compaction take it
  exclusively for the day they rewrite (`lock_day`), so they never interleave.

The upserts use `x = agg.x + EXCLUDED.x`: safe ONLY because the stream commits them
atomically with the offsets and event rows that fence them (docs/RULES.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import psycopg

from streams.models import Enriched
from streams.sessions import PAGE_IN, PAGEVIEWS, UNIQUE, AggKey
from tinytrail.days import date_ordinal, day_date, ms_to_ts

ADVISORY_NS = 0x74746167  # "ttag": (ns, day ordinal) locks one day's aggregates

EVENT_COLUMNS = (
    "event_id", "received_at", "website_id", "visitor_id", "session_id", "event_type",
    "event_name", "url", "path", "referrer", "referrer_domain", "referrer_channel",
    "utm_source", "utm_medium", "utm_campaign", "screen_width", "screen_height",
    "screen_bucket", "browser_family", "os_family", "device_type", "content_group",
    "properties", "is_bot", "is_excluded", "kafka_partition", "kafka_offset", "country",
)
SITE_COUNTERS = ("visitors", "visits", "pageviews", "bounces", "duration_sec", "events")
SITE_IDX = (0, 1, 2, 6, 7, 8)
DIM_COUNTERS = ("visits", "pageviews", "unique_pageviews", "entries", "exits", "bounces",
                "duration_sec", "events", "visitors")  # visitors: 0007_countries.sql
DIM_IDX = (1, 2, 3, 4, 5, 6, 7, 8, 0)
# Deltas with dim "page:CC" go to agg_page_country_daily (0007_countries.sql).
PAGE_COUNTRY_KEY = ("website_id", "country", "day", "is_bot", "path", "grp", "kpart")
PAGE_COUNTRY_COUNTERS = ("pageviews", "unique_pageviews")
AGG_TABLES = ("agg_site_daily", "agg_dim_daily", "agg_page_country_daily")
SITE_KEY = ("website_id", "day", "is_bot", "kpart")
DIM_KEY = ("website_id", "day", "is_bot", "dim", "key", "grp", "kpart")

Row = tuple[Any, ...]


def event_row(ev: Enriched) -> Row:
    """One `events` row in `EVENT_COLUMNS` order."""
    return (
        ev.event_id, ms_to_ts(ev.received_at_ms), ev.website_id, ev.visitor_id, ev.session_id,
        ev.event_type, ev.name, ev.url, ev.path, ev.referrer, ev.referrer_domain,
        ev.referrer_channel, ev.utm_source, ev.utm_medium, ev.utm_campaign, ev.screen_width,
        ev.screen_height, ev.screen_bucket, ev.browser_family, ev.os_family, ev.device_type,
        ev.content_group,
        orjson.dumps(ev.properties).decode() if ev.properties is not None else None,
        ev.is_bot, ev.is_excluded, ev.kafka_partition, ev.kafka_offset, ev.country,
    )


def site_row(k: AggKey, v: Sequence[int]) -> Row:
    """Delta key + counters -> SITE_KEY + SITE_COUNTERS."""
    return (k[0], day_date(k[1]), k[2], k[3], *(v[i] for i in SITE_IDX))


def dim_row(k: AggKey, v: Sequence[int]) -> Row:
    """Delta key + counters -> DIM_KEY + DIM_COUNTERS."""
    return (k[0], day_date(k[1]), k[2], k[4], k[5], k[6], k[3], *(v[i] for i in DIM_IDX))


def page_country_row(k: AggKey, v: Sequence[int]) -> Row:
    """Delta key (w, day, bot, kpart, "page:DE", path, grp) -> PAGE_COUNTRY_KEY + counters."""
    return (k[0], k[4][len(PAGE_IN):], day_date(k[1]), k[2], k[5], k[6], k[3],
            v[PAGEVIEWS], v[UNIQUE])


DeltaRow = tuple[AggKey, list[int]]


def split_deltas(
    rows: Iterable[DeltaRow],
) -> tuple[list[DeltaRow], list[DeltaRow], list[DeltaRow]]:
    """(site, dim, page-country) rows of non-zero deltas, each sorted (lock order)."""
    site: list[DeltaRow] = []
    dims: list[DeltaRow] = []
    pcs: list[DeltaRow] = []
    for kv in rows:
        if any(kv[1]):
            dim = kv[0][4]
            (site if not dim else pcs if dim.startswith(PAGE_IN) else dims).append(kv)
    return sorted(site), sorted(dims), sorted(pcs)


async def _add_rows(
    cur: psycopg.AsyncCursor[Any], table: str, key: Sequence[str],
    counters: Sequence[str], rows: Iterable[Row],
) -> None:
    """COPY rows into a temp copy of `table`, then add them in one INSERT … ON CONFLICT."""
    tmp = f"tmp_{table}"
    await cur.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {tmp} (LIKE {table}) ON COMMIT DELETE ROWS"
    )
    async with cur.copy(
        f"COPY {tmp} ({', '.join(key)}, {', '.join(counters)}) FROM STDIN"
    ) as cp:
        for row in rows:
            await cp.write_row(row)
    sets = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in counters)
    await cur.execute(
        f"INSERT INTO {table} SELECT * FROM {tmp}"
        f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
    )


async def write_deltas(cur: psycopg.AsyncCursor[Any], deltas: dict[AggKey, list[int]]) -> None:
    """Add combined deltas to the aggregate tables (one statement per table); all-zero
    rows (a figure that moved and moved back) are left out. Table and column names are
    this module's constants, never input."""
    site, dims, pcs = split_deltas(deltas.items())
    if site:
        await _add_rows(cur, "agg_site_daily", SITE_KEY, SITE_COUNTERS,
                        (site_row(k, v) for k, v in site))
    if dims:
        await _add_rows(cur, "agg_dim_daily", DIM_KEY, DIM_COUNTERS,
                        (dim_row(k, v) for k, v in dims))
    if pcs:
        await _add_rows(cur, "agg_page_country_daily", PAGE_COUNTRY_KEY, PAGE_COUNTRY_COUNTERS,
                        (page_country_row(k, v) for k, v in pcs))


async def lock_day(conn: psycopg.AsyncConnection[Any], day: int | dt.date) -> None:
    """Take the day's EXCLUSIVE aggregate lock for this transaction (rebuild, bulk,
    compaction). `day`: day ordinal (days since 1970-01-01, UTC) or a date."""
    ordinal = day if isinstance(day, int) else date_ordinal(day)
    await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_NS, ordinal))


async def lock_days_shared(cur: psycopg.AsyncCursor[Any], days: Iterable[int]) -> None:
    """Take the SHARED lock of every day ordinal in `days` (the stream's batch), in day
    order, in one round trip; no-op when empty."""
    ordered = sorted(set(days))
    if ordered:
        await cur.execute(
            "SELECT pg_advisory_xact_lock_shared(%s, d)"
            " FROM (SELECT unnest(%s::int[]) AS d ORDER BY 1) AS days",
            (ADVISORY_NS, ordered),
        )
