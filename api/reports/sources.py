"""GET /api/v1/reports/sources: visits by channel, referrer domain or UTM triple.

Session-level dimensions come from the first event of each visit (the worker's
`channel`, `referrer` and `utm` rows). They carry no content group, so this
report refuses `content_group` (docs/REPORTS.md).
"""

from __future__ import annotations

from typing import Any

from api.reports.params import Getter, ReportParams
from api.reports.store import as_int, fetch_all
from tinytrail.db import Pool
from tinytrail.envelope import ApiError

NAME = "sources"
ALLOWS_CONTENT_GROUP = False
GROUPS = {"channel": "channel", "domain": "referrer", "utm": "utm"}
UTM_SEP = "\x1f"

_QUERY = """
SELECT key, sum(visits) AS visits
FROM agg_dim_daily
WHERE website_id = %(w)s AND dim = %(dim)s AND day BETWEEN %(s)s AND %(e)s
  AND is_bot = ANY(%(bots)s)
GROUP BY key
HAVING sum(visits) > 0
ORDER BY sum(visits) DESC, key COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s
"""


def parse_extra(get: Getter) -> str:
    group_by = get("group_by") or "channel"
    if group_by not in GROUPS:
        raise ApiError(400, "group_by must be one of channel, domain, utm")
    return group_by


def csv_columns(group_by: str) -> tuple[str, ...]:
    return {
        "channel": ("channel", "visits"),
        "domain": ("referrer", "visits"),
        "utm": ("utmSource", "utmMedium", "utmCampaign", "visits"),
    }[group_by]


def _row(group_by: str, key: str, visits: int) -> dict[str, Any]:
    if group_by == "channel":
        return {"channel": key, "visits": visits}
    if group_by == "domain":
        return {"referrer": key, "visits": visits}
    parts = (key.split(UTM_SEP) + ["", "", ""])[:3]
    source, medium, campaign = (x or None for x in parts)
    return {"utmSource": source, "utmMedium": medium, "utmCampaign": campaign, "visits": visits}


async def compute(pool: Pool, p: ReportParams, group_by: str) -> dict[str, Any]:
    rows = await fetch_all(pool, _QUERY, {
        "w": p.website_id, "dim": GROUPS[group_by], "s": p.range.start, "e": p.range.end,
        "bots": p.bot_flags, "limit": p.per_page, "offset": p.offset,
    })
    return {
        "period": p.range.label(),
        "page": p.page,
        "per_page": p.per_page,
        "rows": [_row(group_by, r["key"], as_int(r["visits"])) for r in rows],
    }


def csv_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in data["rows"]]
