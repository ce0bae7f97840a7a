"""Read helpers over the Postgres pool, shared by the report modules.

Every report query filters aggregates the same way: one website, an inclusive day
range, and `is_bot = ANY(flags)` so that the primary key
(website_id, day, is_bot, ...) stays usable whether bots are included or not.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import sql

from tinytrail.db import Pool

Query = str | sql.Composable


async def fetch_all(pool: Pool, query: Query, args: dict[str, Any]) -> list[Any]:
    async with pool.connection() as conn:
        cur = await conn.execute(query, args)  # type: ignore[arg-type]
        return await cur.fetchall()


async def fetch_one(pool: Pool, query: Query, args: dict[str, Any]) -> Any:
    rows = await fetch_all(pool, query, args)
    return rows[0] if rows else None


def as_int(value: Any) -> int:
    """SUM() over bigint comes back as Decimal or None; reports speak int."""
    return int(value or 0)


async def first_day(pool: Pool, website_id: str) -> dt.date | None:
    """The website's first day with data, or its creation day when it has none.

    Reads the aggregates (the events table may have lost old partitions to retention).
    """
    row = await fetch_one(
        pool,
        "SELECT COALESCE((SELECT min(day) FROM agg_site_daily WHERE website_id = %(w)s),"
        " (SELECT (created_at AT TIME ZONE 'UTC')::date FROM websites WHERE id = %(w)s))"
        " AS first",
        {"w": website_id},
    )
    return None if row is None else row["first"]
