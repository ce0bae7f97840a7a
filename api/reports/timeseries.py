"""GET /api/v1/reports/timeseries: one metric per day, every day of the period.

Days without data appear with 0. Count metrics are daily sums; `bounce_rate` and
`avg_session_duration` are each day's own rate (bounces / visits that day).

Scopes (docs/REPORTS.md has the table):
  site-wide      visits, pageviews, bounces, duration from `agg_site_daily`;
                 unique_pageviews, landing_page_entries, exit_page_exits are the
                 day's sums over all `page` rows.
  path=P         `page` rows of P: visits = visits that viewed P (its unique
                 pageviews); bounce_rate and avg_session_duration over the visits
                 that landed on P (bounces / entries, duration / entries).
  content_group  like path, over the group's pages; visits = visits that viewed a
                 page of the group (`content_group` rows). With both, path rows of
                 that group.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from api.reports.figures import avg_duration, bounce_rate
from api.reports.params import Getter, ReportParams
from api.reports.store import as_int, fetch_all
from tinytrail.db import Pool
from tinytrail.envelope import ApiError

NAME = "timeseries"
CSV_COLUMNS = ("date", "value")
METRICS = ("visits", "pageviews", "unique_pageviews", "bounce_rate", "avg_session_duration",
           "landing_page_entries", "exit_page_exits")
_SITE_METRICS = ("visits", "pageviews", "bounce_rate", "avg_session_duration")

_SITE = """
SELECT day, sum(visits) AS visits, sum(pageviews) AS pageviews, 0 AS upv, 0 AS entries,
       0 AS exits, sum(bounces) AS bounces, sum(duration_sec) AS duration, sum(visits) AS den
FROM agg_site_daily
WHERE website_id = %(w)s AND day BETWEEN %(s)s AND %(e)s AND is_bot = ANY(%(bots)s)
GROUP BY day
"""

_PAGES = """
SELECT day, sum(unique_pageviews) AS visits, sum(pageviews) AS pageviews,
       sum(unique_pageviews) AS upv, sum(entries) AS entries, sum(exits) AS exits,
       sum(bounces) AS bounces, sum(duration_sec) AS duration, sum(entries) AS den
FROM agg_dim_daily
WHERE website_id = %(w)s AND dim = 'page' AND day BETWEEN %(s)s AND %(e)s
  AND is_bot = ANY(%(bots)s)
  AND (%(path)s::text IS NULL OR key = %(path)s::text)
  AND (%(g)s::text IS NULL OR grp = %(g)s::text)
GROUP BY day
"""

_GROUP_VISITS = """
SELECT day, sum(unique_pageviews) AS visits
FROM agg_dim_daily
WHERE website_id = %(w)s AND dim = 'content_group' AND key = %(g)s
  AND day BETWEEN %(s)s AND %(e)s AND is_bot = ANY(%(bots)s)
GROUP BY day
"""


@dataclass(frozen=True)
class Extra:
    metric: str
    path: str | None


def parse_extra(get: Getter) -> Extra:
    metric = get("metric") or "pageviews"
    if metric not in METRICS:
        raise ApiError(400, f"metric must be one of {', '.join(METRICS)}")
    path = get("path")
    if path is not None and (not path.startswith("/") or len(path) > 2048):
        raise ApiError(400, "path must start with / and be at most 2048 characters")
    return Extra(metric, path)


def _value(metric: str, r: dict[str, Any]) -> int | float:
    if metric == "bounce_rate":
        return bounce_rate(as_int(r["bounces"]), as_int(r["den"]))
    if metric == "avg_session_duration":
        return avg_duration(as_int(r["duration"]), as_int(r["den"]))
    column = {"visits": "visits", "pageviews": "pageviews", "unique_pageviews": "upv",
              "landing_page_entries": "entries", "exit_page_exits": "exits"}[metric]
    return as_int(r[column])


async def compute(pool: Pool, p: ReportParams, extra: Extra) -> dict[str, Any]:
    args = {"w": p.website_id, "s": p.range.start, "e": p.range.end, "bots": p.bot_flags,
            "path": extra.path, "g": p.content_group}
    site_wide = extra.path is None and p.content_group is None
    query = _SITE if site_wide and extra.metric in _SITE_METRICS else _PAGES
    by_day: dict[dt.date, dict[str, Any]] = {
        r["day"]: r for r in await fetch_all(pool, query, args)}
    if extra.metric == "visits" and extra.path is None and p.content_group is not None:
        by_day = {r["day"]: r for r in await fetch_all(pool, _GROUP_VISITS, args)}
    series = []
    for day in p.range.each_day():
        row = by_day.get(day)
        series.append({"date": day.isoformat(), "value": _value(extra.metric, row) if row else 0})
    return {
        "period": p.range.label(),
        "metric": extra.metric,
        "path": extra.path if extra.path is not None else "*",
        "series": series,
    }


def csv_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["date"], r["value"]) for r in data["series"]]
