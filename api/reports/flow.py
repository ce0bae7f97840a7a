"""GET /api/v1/reports/flow: landing pages (entries) and exit pages (exits).

Sums `page` rows. `page`/`per_page` apply to both lists, each sorted by its count
descending then path. `content_group=G` keeps the paths of G (landing/exit pages
that belong to the group). A path whose group changed inside the period is summed
over its groups here (the list is keyed by path alone).
"""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from api.reports.params import ReportParams
from api.reports.store import as_int, fetch_all

NAME = "flow"
CSV_COLUMNS = ("path", "entries")

_QUERY = """
SELECT key AS path, sum({col}) AS n
FROM agg_dim_daily
WHERE website_id = %(w)s AND dim = 'page' AND day BETWEEN %(s)s AND %(e)s
  AND is_bot = ANY(%(bots)s) AND (%(g)s::text IS NULL OR grp = %(g)s::text)
GROUP BY key
HAVING sum({col}) > 0
ORDER BY sum({col}) DESC, key COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s
"""


async def _list(pool: AsyncConnectionPool, p: ReportParams, col: str) -> list[Any]:
    query = sql.SQL(_QUERY).format(col=sql.Identifier(col))
    return await fetch_all(pool, query, {
        "w": p.website_id, "s": p.range.start, "e": p.range.end, "bots": p.bot_flags,
        "g": p.content_group, "limit": p.per_page, "offset": p.offset,
    })


async def compute(pool: AsyncConnectionPool, p: ReportParams, _extra: Any = None) -> dict[str, Any]:
    landing = await _list(pool, p, "entries")
    exits = await _list(pool, p, "exits")
    return {
        "period": p.range.label(),
        "landing_pages": [{"path": r["path"], "entries": as_int(r["n"])} for r in landing],
        "exit_pages": [{"path": r["path"], "exits": as_int(r["n"])} for r in exits],
    }


def csv_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["path"], r["entries"]) for r in data["landing_pages"]]
