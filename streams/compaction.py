"""Compaction: collapse a closed day's per-partition aggregate rows into one row per key.

The workers write `agg_site_daily` / `agg_dim_daily` rows per Kafka partition
(`kpart` 0..N-1) so that batches of different partitions never fight over one
row. Reports sum `kpart` away, so once a day can hardly change any more its N
rows per key are dead weight: a 90-day `pages` report summed ~200k rows, 12 per
(path, day, bot). Compaction replaces them by their sum, stored with
`kpart = COMPACT_KPART` (-1, never a real partition).

Why it is exact: every counter is additive across rows, so replacing rows by
their sum leaves every SUM a report computes unchanged. Worked example, one key
(site S, 2026-03-01, human, page "/a"):
    kpart 0: pageviews 5, exits 2       kpart 3: pageviews 1, exits -1 (a late
    correction moved an exit)           -> kpart -1: pageviews 6, exits 1.
Rows whose counters all sum to 0 are dropped (they add nothing).
A late event for a compacted day just adds a kpart row again (the sink's upsert
key includes kpart), still additive; the next run folds it in. The rebuild
replaces the whole day anyway.

Concurrency: one transaction per day under the day's EXCLUSIVE advisory lock
(`ADVISORY_NS`, day ordinal), the lock the rebuild takes; the sink takes it
shared for every day a batch touches, so a batch never interleaves with a
compaction. Idempotent: a day with no kpart >= 0 row is skipped, and running
again on a compacted day gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from streams.aggregates import DIM_COUNTERS, PAGE_COUNTRY_COUNTERS, SITE_COUNTERS, lock_day
from tinytrail.db import Pool

log = logging.getLogger("tinytrail.streams.compaction")

COMPACT_KPART = -1
KEEP_OPEN_DAYS = 2  # today and yesterday still get most late events: left per partition


def _collapse_sql(table: str, keys: tuple[str, ...], counters: tuple[str, ...]) -> str:
    sums = ", ".join(f"sum({c})" for c in counters)
    nonzero = " OR ".join(f"sum({c}) <> 0" for c in counters)
    cols = ", ".join(keys)
    return (
        f"WITH gone AS (DELETE FROM {table} WHERE day = %(day)s RETURNING *)"  # noqa: S608
        f" INSERT INTO {table} ({cols}, kpart, {', '.join(counters)})"
        f" SELECT {cols}, {COMPACT_KPART}, {sums} FROM gone GROUP BY {cols} HAVING {nonzero}"
    )


_SITE_SQL = _collapse_sql("agg_site_daily", ("website_id", "day", "is_bot"), SITE_COUNTERS)
_DIM_SQL = _collapse_sql(
    "agg_dim_daily", ("website_id", "day", "is_bot", "dim", "key", "grp"), DIM_COUNTERS
)
_PAGE_COUNTRY_SQL = _collapse_sql(
    "agg_page_country_daily", ("website_id", "country", "day", "is_bot", "path", "grp"),
    PAGE_COUNTRY_COUNTERS,
)


async def compact_day_locked(conn: Any, day: dt.date) -> tuple[int, int]:
    """Collapse `day` inside the caller's transaction, which MUST hold the day's exclusive
    advisory lock. Returns (site rows, dim rows) after compaction."""
    site = await conn.execute(_SITE_SQL, {"day": day})
    dim = await conn.execute(_DIM_SQL, {"day": day})
    page_country = await conn.execute(_PAGE_COUNTRY_SQL, {"day": day})
    return site.rowcount, dim.rowcount + page_country.rowcount


async def compact_day(pool: Pool, day: dt.date) -> tuple[int, int]:
    """Collapse one day in its own transaction under the day's exclusive lock."""
    async with pool.connection() as conn, conn.transaction():
        await lock_day(conn, day)
        return await compact_day_locked(conn, day)


async def uncompacted_days(pool: Pool, before: dt.date) -> list[dt.date]:
    """Days earlier than `before` that still have per-partition rows.

    Every batch that writes a day adds to its site row (the events counter), so
    `agg_site_daily` alone tells which days have kpart rows (a small partial
    index, migration 0005, keeps this cheap).
    """
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT DISTINCT day FROM agg_site_daily WHERE kpart >= 0 AND day < %s ORDER BY day",
            (before,),
        )
        return [r["day"] if isinstance(r, dict) else r[0] for r in await cur.fetchall()]


async def compact_old_days(
    pool: Pool, today: dt.date | None = None, keep_open: int = KEEP_OPEN_DAYS
) -> list[dt.date]:
    """Compact every day before `today - keep_open + 1` (by default: before yesterday, UTC).

    Example: today 2026-03-10 -> 2026-03-08 and older are compacted, 03-09 and
    03-10 keep their per-partition rows. Returns the days compacted.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    before = today - dt.timedelta(days=keep_open - 1)
    days = await uncompacted_days(pool, before)
    for d in days:
        await compact_day(pool, d)
    if days:
        log.info("compacted %d day(s) of aggregates", len(days),
                 extra={"first": days[0].isoformat(), "last": days[-1].isoformat()})
    return days
