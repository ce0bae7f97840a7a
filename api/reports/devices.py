"""GET /api/v1/reports/devices: visits by device type, browser, OS and screen bucket.

One query over the four session-level dimensions; not paginated (the lists are
short by construction). Refuses `content_group` (no group on session dimensions).
"""

from __future__ import annotations

from typing import Any

from api.reports.params import ReportParams
from api.reports.store import as_int, fetch_all
from tinytrail.db import Pool

NAME = "devices"
ALLOWS_CONTENT_GROUP = False
CSV_COLUMNS = ("deviceType", "visits")
# dim -> (response list, key field)
LISTS = {
    "device": ("device_types", "deviceType"),
    "browser": ("browsers", "browserFamily"),
    "os": ("os_families", "osFamily"),
    "screen": ("screen_resolutions", "bucket"),
}

_QUERY = """
SELECT dim, key, sum(visits) AS visits
FROM agg_dim_daily
WHERE website_id = %(w)s AND dim = ANY(%(dims)s) AND day BETWEEN %(s)s AND %(e)s
  AND is_bot = ANY(%(bots)s)
GROUP BY dim, key
HAVING sum(visits) > 0
ORDER BY dim, sum(visits) DESC, key COLLATE "C"
"""


async def compute(pool: Pool, p: ReportParams, _extra: Any = None) -> dict[str, Any]:
    rows = await fetch_all(pool, _QUERY, {
        "w": p.website_id, "dims": list(LISTS), "s": p.range.start, "e": p.range.end,
        "bots": p.bot_flags,
    })
    data: dict[str, Any] = {"period": p.range.label()}
    for name, _field in LISTS.values():
        data[name] = []
    for r in rows:
        name, field = LISTS[r["dim"]]
        data[name].append({field: r["key"], "visits": as_int(r["visits"])})
    return data


def csv_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["deviceType"], r["visits"]) for r in data["device_types"]]
