"""GET /api/v1/reports/summary: five headline metrics, optionally compared.

Site-wide figures are sums over `agg_site_daily`. With `content_group=G` the
figures describe that group (see docs/REPORTS.md): visits = visits that viewed a
page of G (`content_group` rows), pageviews = page views of G's pages, bounce rate
and average duration over the visits that landed on a page of G (`page` rows with
grp = G), and unique_visitors is null (visitor ids are not kept per group).
With `country=DE` every figure comes from the `country` rows of DE (visits from DE and
their visitors, bounces and duration; page views from DE: 0007_countries.sql);
`country` and `content_group` together are refused (no such cross-aggregate).
"""

from __future__ import annotations

from typing import Any

from api.reports.figures import avg_duration, bounce_rate, change_pct
from api.reports.params import DateRange, ReportParams
from api.reports.store import as_int, fetch_one
from tinytrail.db import Pool
from tinytrail.envelope import ApiError

NAME = "summary"
ALLOWS_COUNTRY = True
CSV_COLUMNS = ("metric", "value", "previous", "change_pct")
METRICS = ("visits", "unique_visitors", "pageviews", "bounce_rate", "avg_session_duration_sec")

_SITE = """
SELECT sum(visitors) AS visitors, sum(visits) AS visits, sum(pageviews) AS pageviews,
       sum(bounces) AS bounces, sum(duration_sec) AS duration_sec, sum(visits) AS landed
FROM agg_site_daily
WHERE website_id = %(w)s AND day BETWEEN %(s)s AND %(e)s AND is_bot = ANY(%(bots)s)
"""

_COUNTRY = """
SELECT sum(visitors) AS visitors, sum(visits) AS visits, sum(pageviews) AS pageviews,
       sum(bounces) AS bounces, sum(duration_sec) AS duration_sec, sum(visits) AS landed
FROM agg_dim_daily
WHERE website_id = %(w)s AND dim = 'country' AND key = %(c)s
  AND day BETWEEN %(s)s AND %(e)s AND is_bot = ANY(%(bots)s)
"""

_GROUP = """
SELECT NULL AS visitors,
       (SELECT sum(unique_pageviews) FROM agg_dim_daily
         WHERE website_id = %(w)s AND dim = 'content_group' AND key = %(g)s
           AND day BETWEEN %(s)s AND %(e)s AND is_bot = ANY(%(bots)s)) AS visits,
       sum(pageviews) AS pageviews, sum(bounces) AS bounces,
       sum(duration_sec) AS duration_sec, sum(entries) AS landed
FROM agg_dim_daily
WHERE website_id = %(w)s AND dim = 'page' AND grp = %(g)s
  AND day BETWEEN %(s)s AND %(e)s AND is_bot = ANY(%(bots)s)
"""


async def _figures(pool: Pool, p: ReportParams, r: DateRange) -> dict[str, Any]:
    args = {"w": p.website_id, "s": r.start, "e": r.end, "bots": p.bot_flags,
            "g": p.content_group, "c": p.country}
    query = _GROUP if p.content_group else _COUNTRY if p.country else _SITE
    row = await fetch_one(pool, query, args)
    landed = as_int(row["landed"])
    return {
        "visits": as_int(row["visits"]),
        "unique_visitors": None if p.content_group else as_int(row["visitors"]),
        "pageviews": as_int(row["pageviews"]),
        "bounce_rate": bounce_rate(as_int(row["bounces"]), landed),
        "avg_session_duration_sec": avg_duration(as_int(row["duration_sec"]), landed),
    }


async def compute(pool: Pool, p: ReportParams, _extra: Any = None) -> dict[str, Any]:
    if p.country is not None and p.content_group is not None:
        raise ApiError(400, "country and content_group cannot be combined on summary")
    now = await _figures(pool, p, p.range)
    data: dict[str, Any] = {"period": p.range.label()}
    if p.compare_range is None:
        data["metrics"] = {m: {"value": now[m]} for m in METRICS}
        return data
    before = await _figures(pool, p, p.compare_range)
    c = p.compare_range
    data["comparison"] = f"{c.start.isoformat()} to {c.end.isoformat()}"
    data["metrics"] = {
        m: {
            "value": now[m],
            "previous": before[m],
            "change_pct": None if now[m] is None or before[m] is None
            else change_pct(now[m], before[m]),
        }
        for m in METRICS
    }
    return data


def csv_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (m, v.get("value"), v.get("previous"), v.get("change_pct"))
        for m, v in data["metrics"].items()
    ]
