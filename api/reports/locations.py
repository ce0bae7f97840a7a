"""GET /api/v1/reports/locations: visits by country, most visits first.

Sums `agg_dim_daily` rows with dim = 'country' (the country of each visit's first
event, looked up by the collector from the client address: docs/COUNTRIES.md).
Rows: `{"country": "DE", "countryName": "Germany", "visits": 123}`, sorted by visits
(descending), ties by code; visits whose address had no country (private, reserved,
unlisted) form one row with `country` and `countryName` null, after the codes it ties
with, so the rows add up to the summary's visits. Paginated. Names come from
`pycountry` (ISO 3166-1, its common name where it has one: "Bolivia", "Taiwan");
a code ISO does not assign (DB-IP's `XK` for Kosovo) has a null name.
Refuses `content_group` (visits carry no group) and `country`.

IP geolocation by DB-IP (https://db-ip.com), CC BY 4.0.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pycountry

from api.reports.params import ReportParams
from api.reports.store import as_int, fetch_all
from tinytrail.db import Pool

NAME = "locations"
ALLOWS_CONTENT_GROUP = False
CSV_COLUMNS = ("country", "countryName", "visits")
ATTRIBUTION = "IP geolocation by DB-IP (https://db-ip.com), CC BY 4.0"

_QUERY = """
SELECT key, sum(visits) AS visits
FROM agg_dim_daily
WHERE website_id = %(w)s AND dim = 'country' AND day BETWEEN %(s)s AND %(e)s
  AND is_bot = ANY(%(bots)s)
GROUP BY key
HAVING sum(visits) > 0
ORDER BY sum(visits) DESC, key = '', key COLLATE "C"
LIMIT %(limit)s OFFSET %(offset)s
"""


@lru_cache(maxsize=512)
def country_name(code: str) -> str | None:
    """ISO 3166-1 alpha-2 code -> English short name from pycountry (its `common_name`
    when it has one), None for a code ISO does not assign. "DE" -> "Germany",
    "TW" -> "Taiwan", "XK" -> None."""
    entry = pycountry.countries.get(alpha_2=code)
    if entry is None:
        return None
    return str(getattr(entry, "common_name", None) or entry.name)


async def compute(pool: Pool, p: ReportParams, _extra: Any = None) -> dict[str, Any]:
    rows = await fetch_all(pool, _QUERY, {
        "w": p.website_id, "s": p.range.start, "e": p.range.end, "bots": p.bot_flags,
        "limit": p.per_page, "offset": p.offset,
    })
    return {
        "period": p.range.label(),
        "page": p.page,
        "per_page": p.per_page,
        "rows": [
            {"country": r["key"] or None,
             "countryName": country_name(r["key"]) if r["key"] else None,
             "visits": as_int(r["visits"])}
            for r in rows
        ],
    }


def csv_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["country"], r["countryName"], r["visits"]) for r in data["rows"]]
