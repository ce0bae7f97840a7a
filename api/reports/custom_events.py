"""GET /api/v1/reports/custom-events: custom events counted by name.

Sums `custom_event` rows (key = properties.name). `event_name` keeps one name.
Refuses `content_group`: the worker does not keep custom events per group.
"""

from __future__ import annotations

from typing import Any

from api.reports.params import Getter, ReportParams
from api.reports.store import as_int, fetch_all
from tinytrail.db import Pool
from tinytrail.envelope import ApiError

NAME = "custom-events"
ALLOWS_CONTENT_GROUP = False
CSV_COLUMNS = ("name", "count")

_QUERY = """
SELECT key AS name, sum(events) AS n
FROM agg_dim_daily
WHERE website_id = %(w)s AND dim = 'custom_event' AND day BETWEEN %(s)s AND %(e)s
  AND is_bot = ANY(%(bots)s) AND (%(name)s::text IS NULL OR key = %(name)s::text)
GROUP BY key
HAVING sum(events) > 0
ORDER BY sum(events) DESC, key COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s
"""


def parse_extra(get: Getter) -> str | None:
    name = get("event_name")
    if name is not None and not 1 <= len(name) <= 200:
        raise ApiError(400, "event_name must be 1 to 200 characters")
    return name


async def compute(
    pool: Pool, p: ReportParams, event_name: str | None
) -> dict[str, Any]:
    rows = await fetch_all(pool, _QUERY, {
        "w": p.website_id, "s": p.range.start, "e": p.range.end, "bots": p.bot_flags,
        "name": event_name, "limit": p.per_page, "offset": p.offset,
    })
    return {
        "period": p.range.label(),
        "page": p.page,
        "per_page": p.per_page,
        "rows": [{"name": r["name"], "count": as_int(r["n"])} for r in rows],
    }


def csv_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["name"], r["count"]) for r in data["rows"]]
