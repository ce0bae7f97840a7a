"""GET /api/v1/reports/flow: landing pages (entries) and exit pages (exits).

Sums `page` rows. `page`/`per_page` apply to both lists, each sorted by its count
descending then path. `content_group=G` keeps the paths of G (landing/exit pages
that belong to the group). A path whose group changed inside the period is summed
over its groups here (the list is keyed by path alone).
"""

from __future__ import annotations

from typing import Any

from api.reports.params import ReportParams
from api.reports.store import as_int, fetch_all
from tinytrail.db import Pool

NAME = "flow"
CSV_COLUMNS = ("path", "entries")

# One scan of the period's `page` rows feeds both lists (it used to be two scans):
# `t` sums entries and exits per path once, then each list is ranked, filtered
# (count > 0) and paginated on its own; `rank` keeps each list's order.
_QUERY = """
WITH t AS (
  SELECT key, sum(entries) AS entries, sum(exits) AS exits
  FROM agg_dim_daily
  WHERE website_id = %(w)s AND dim = 'page' AND day BETWEEN %(s)s AND %(e)s
    AND is_bot = ANY(%(bots)s) AND (%(g)s::text IS NULL OR grp = %(g)s::text)
  GROUP BY key
)
(SELECT 'landing' AS list, key AS path, entries AS n,
        row_number() OVER (ORDER BY entries DESC, key COLLATE "C") AS rank
 FROM t WHERE entries > 0
 ORDER BY entries DESC, key COLLATE "C" LIMIT %(limit)s OFFSET %(offset)s)
UNION ALL
(SELECT 'exit', key, exits, row_number() OVER (ORDER BY exits DESC, key COLLATE "C")
 FROM t WHERE exits > 0
 ORDER BY exits DESC, key COLLATE "C" LIMIT %(limit)s OFFSET %(offset)s)
ORDER BY list, rank
"""


async def compute(pool: Pool, p: ReportParams, _extra: Any = None) -> dict[str, Any]:
    rows = await fetch_all(pool, _QUERY, {
        "w": p.website_id, "s": p.range.start, "e": p.range.end, "bots": p.bot_flags,
        "g": p.content_group, "limit": p.per_page, "offset": p.offset,
    })
    return {
        "period": p.range.label(),
        "landing_pages": [{"path": r["path"], "entries": as_int(r["n"])}
                          for r in rows if r["list"] == "landing"],
        "exit_pages": [{"path": r["path"], "exits": as_int(r["n"])}
                       for r in rows if r["list"] == "exit"],
    }


def csv_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["path"], r["entries"]) for r in data["landing_pages"]]
