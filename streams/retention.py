"""Retention: drop daily event partitions older than `retention_days`, create days ahead.

Each partition is dropped in its own transaction under the day's EXCLUSIVE advisory
lock (`streams.aggregates.lock_day`, the one every rewrite of a day takes): a rebuild
of that day checks under the same lock that the partition still exists
(`streams/rebuild.py`), so it either runs wholly before the drop or is refused after
it, and never replaces the day's aggregates by the fold of a partition that vanished
under it (docs/RULES.md, "A rebuild never deletes figures it cannot recompute").

Aggregates are kept for ever (sessions live in the worker's Faust table, which
expires them itself: streams/session_state.py). The same timer then compacts the
aggregates of closed days (`streams/compaction.py`: days before yesterday, UTC,
collapsed across partitions; idempotent, so running it hourly costs one indexed
look-up when there is nothing to do).

The funnel cache (api/reports/funnel.py) loses the days whose events are dropped (a
cached day must equal what its events give: nothing, once they are gone), and each
website keeps its FUNNEL_CACHE_FUNNELS most recently stored funnels (a funnel viewed
once a day stores the day that closed, so it stays; an hour of exploring new funnels
is all the table can grow by).
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from psycopg import sql

from streams.aggregates import lock_day
from streams.compaction import compact_old_days
from tinytrail.db import DictConnection, Pool

log = logging.getLogger("tinytrail.streams.retention")
FUNNEL_CACHE_FUNNELS = 50
_PART_RE = re.compile(r"^events_(\d{8})$")


async def run_retention(
    pool: Pool, retention_days: int, ahead_days: int, today: dt.date | None = None
) -> list[str]:
    """Drop partitions whose whole day is older than `today - retention_days`; returns names.

    Example: retention 400 days, today 2026-03-01 -> the oldest kept day is
    2025-01-25 (today - 400); events_20250124 and older are dropped.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    oldest_kept = today - dt.timedelta(days=retention_days)
    dropped: list[str] = []
    async with pool.connection() as conn:
        await conn.execute(
            "SELECT tinytrail_ensure_event_partitions(%s, %s)", (today - dt.timedelta(days=1),
                                                                   ahead_days + 1),
        )
        cur = await conn.execute(
            "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'events'::regclass"
        )
        for row in await cur.fetchall():
            m = _PART_RE.match(row["name"])
            if not m:
                continue
            day = dt.datetime.strptime(m.group(1), "%Y%m%d").date()
            if day < oldest_kept:
                async with conn.transaction():
                    await lock_day(conn, day)
                    await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(
                        sql.Identifier(row["name"])))
                dropped.append(row["name"])
        # After the drops: a funnel request that read a dropped partition held it until
        # its commit (with the rows it cached), so the drop waited for it.
        await forget_funnels(conn, oldest_kept)
    if dropped:
        log.info("retention dropped %d event partitions", len(dropped), extra={"dropped": dropped})
    await compact_old_days(pool, today)
    return sorted(dropped)


async def forget_funnels(conn: DictConnection, oldest_kept: dt.date,
                         keep: int = FUNNEL_CACHE_FUNNELS) -> None:
    """Delete the funnel cache's days before `oldest_kept`, and every funnel of a website
    beyond its `keep` most recently stored ones (with their days: ON DELETE CASCADE)."""
    await conn.execute("DELETE FROM funnel_cache_days WHERE day < %s", (oldest_kept,))
    await conn.execute(
        "DELETE FROM funnel_cache c USING (SELECT website_id, funnel, row_number() OVER"
        " (PARTITION BY website_id ORDER BY stored_at DESC, funnel) AS n FROM funnel_cache) r"
        " WHERE c.website_id = r.website_id AND c.funnel = r.funnel AND r.n > %s", (keep,))
