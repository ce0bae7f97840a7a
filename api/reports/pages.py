"""GET /api/v1/reports/pages: page views per path, most viewed first.

Sums `agg_dim_daily` rows with dim = 'page'. A row is (path, content group): the
group is the one the worker assigned at ingest, so a path whose group changed
inside the period appears once per group. `content_group=G` keeps G's rows.
`country=DE` reads `agg_page_country_daily` instead (page views of events from DE,
unique page views of visits from DE; migrations/0007_countries.sql).
"""

from __future__ import annotations

from typing import Any

from api.reports.params import ReportParams
from api.reports.store import as_int, fetch_all
from tinytrail.db import Pool

NAME = "pages"
ALLOWS_COUNTRY = True
CSV_COLUMNS = ("path", "contentGroup", "pageviews", "uniquePageviews")

_QUERY = """
SELECT key AS path, grp, sum(pageviews) AS pageviews, sum(unique_pageviews) AS upv
FROM agg_dim_daily
WHERE website_id = %(w)s AND dim = 'page' AND day BETWEEN %(s)s AND %(e)s
  AND is_bot = ANY(%(bots)s) AND (%(g)s::text IS NULL OR grp = %(g)s::text)
GROUP BY key, grp
HAVING sum(pageviews) > 0
ORDER BY sum(pageviews) DESC, key COLLATE "C", grp COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s
"""


_BY_COUNTRY = """
SELECT path, grp, sum(pageviews) AS pageviews, sum(unique_pageviews) AS upv
FROM agg_page_country_daily
WHERE website_id = %(w)s AND country = %(c)s AND day BETWEEN %(s)s AND %(e)s
  AND is_bot = ANY(%(bots)s) AND (%(g)s::text IS NULL OR grp = %(g)s::text)
GROUP BY path, grp
HAVING sum(pageviews) > 0
ORDER BY sum(pageviews) DESC, path COLLATE "C", grp COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s
"""


async def compute(pool: Pool, p: ReportParams, _extra: Any = None) -> dict[str, Any]:
    rows = await fetch_all(pool, _QUERY if p.country is None else _BY_COUNTRY, {
        "w": p.website_id, "c": p.country, "s": p.range.start, "e": p.range.end,
        "bots": p.bot_flags, "g": p.content_group, "limit": p.per_page, "offset": p.offset,
    })
    return {
        "period": p.range.label(),
        "page": p.page,
        "per_page": p.per_page,
        "rows": [
            {"path": r["path"], "contentGroup": r["grp"] or None,
             "pageviews": as_int(r["pageviews"]), "uniquePageviews": as_int(r["upv"])}
            for r in rows
        ],
    }


def csv_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["path"], r["contentGroup"], r["pageviews"], r["uniquePageviews"])
            for r in data["rows"]]
